// Builds the producer from its dependencies: the express app, and the request listener that puts the
// inference fast path in front of it; tests listen on port 0, main.ts on MODELQ_PORT.
import http from 'node:http';
import express from 'express';
import { KeyRing } from '../core/auth.ts';
import { AppError } from '../core/errors.ts';
import { auditMiddleware, authMiddleware, rateLimitFor } from './auth.ts';
import { backpressureFor } from './inference/backpressure.ts';
import type { ProducerDeps } from './deps.ts';
import { errorMiddleware, sendError } from './http.ts';
import { metricsFor } from './metrics.ts';
import { buildOpenApi } from './openapi.ts';
import { batchesRouter } from './routes/batches.ts';
import { compressRouter } from './routes/compress.ts';
import { datasetsRouter } from './datasets/routes.ts';
import { jobsRouter } from './routes/jobs.ts';
import { rolloutsRouter } from './routes/rollouts.ts';
import { modelsRouter } from './routes/models.ts';
import { processingRouter } from './routes/processing.ts';
import { pipelinesRouter } from './routes/pipelines.ts';
import { kserveRouter } from './routes/kserve.ts';
import { driftRouter } from './routes/drift.ts';
import { cardsRouter } from './routes/cards.ts';
import { logsRouter } from './routes/logs.ts';
import { auditRouter, auditStreamFor } from './routes/audit.ts';
import { erasureRouter } from './routes/erasure.ts';
import { v2Router } from './routes/v2.ts';
import { fastInfer } from './inference/fast-infer.ts';
import { inferenceFor } from './inference/service.ts';
import { openaiRouter } from './openai/router.ts';

export interface ProducerApp {
  /** The express app alone: every route, middleware and error body. */
  app: express.Express;
  /** What a server should call per request: plain inference requests take the fast path, everything else goes to `app`. */
  handle: http.RequestListener;
  /** An http.Server on `handle`, listening: takes http.Server's listen arguments. */
  listen: http.Server['listen'];
}

export function buildApp(d: ProducerDeps): ProducerApp {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const metrics = metricsFor(d);
  app.use(metrics.middleware);
  // While Redis is unreachable nothing but liveness can be answered truthfully: say so at once.
  app.use((req, res, next) => {
    if (d.redis.status === 'ready' || req.path === '/v2/health/live') return next();
    sendError(req, res, new AppError('unavailable', 'Redis is unavailable; try again shortly', true));
  });
  // First, so refused attempts are in the audit log too; each line also goes to the audit stream.
  const auditStream = auditStreamFor(d);
  app.use(
    auditMiddleware(d.audit ?? d.logger, (f) =>
      auditStream
        .append({ actor: f.tenant, keyId: f.keyId, action: `${f.method} ${f.route}`, target: f.target, status: f.status })
        .catch((e: Error) => d.logger.warn({ err: e.message }, 'audit entry not written to the stream')),
    ),
  );
  const keys = KeyRing.fromConfig(d.cfg);
  app.use(authMiddleware(keys));
  const limiter = rateLimitFor(d);
  if (limiter) app.use(limiter.middleware);
  app.use(backpressureFor(d).middleware);

  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });
  const openapi = buildOpenApi();
  app.get('/openapi.json', (_req, res) => void res.json(openapi));

  app.use(v2Router(d));
  app.use(kserveRouter(d)); // before /v1/models/:name, which would take "iris:predict" as a name
  app.use(processingRouter(d));
  app.use(pipelinesRouter(d));
  app.use(modelsRouter(d));
  app.use(rolloutsRouter(d));
  app.use(driftRouter(d));
  app.use(cardsRouter(d));
  app.use(logsRouter(d));
  app.use(auditRouter(d));
  app.use(erasureRouter(d));
  app.use(batchesRouter(d));
  app.use(compressRouter(d));
  app.use(datasetsRouter(d));
  app.use(jobsRouter(d));
  app.use(openaiRouter(d));

  app.use((req, res) => sendError(req, res, new AppError('not_found', `no route ${req.method} ${req.path.slice(0, 200)}`)));
  app.use(errorMiddleware(d.logger));

  // Plain inference requests take the fast path first (same answers, errors and metrics, a fraction
  // of express's cost); everything else goes to express.
  const fast = fastInfer({ deps: d, keys, metrics, service: inferenceFor(d) });
  const handle: http.RequestListener = (req, res) => {
    if (!fast(req, res)) app(req, res);
  };
  const listen = ((...args: Parameters<http.Server['listen']>) => http.createServer(handle).listen(...args)) as http.Server['listen'];
  return { app, handle, listen };
}

// /v2: the Open Inference Protocol (REST). Errors use the protocol's own body { "error": "..." }.
// Inference itself is the producer's inference service (producer/inference/service.ts).
import { Router, type Request, type Response } from 'express';
import { AppError } from '../../core/errors.ts';
import type { VersionRecord } from '../../core/registry.ts';
import { MAX_ROUTE_KEY, ROUTE_KEY_HEADER, VERSION_HEADER } from '../../core/routing.ts';
import { readWorkerStats } from '../../core/stats.ts';
import { clientKey, principalOf } from '../auth.ts';
import { assertReadable } from '../model-access.ts';
import type { ProducerDeps } from '../deps.ts';
import { inferBody, jsonBody } from '../body.ts';
import { modelMetadata, SERVER_VERSION } from '../inference/metadata.ts';
import { inferenceFor, jsonAnswer, type Answer, type Caller } from '../inference/service.ts';

/** What res.json sends, without express's generic send path (ETag, freshness, type lookup) on the hot route. */
function sendJson(res: Response, value: unknown) {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The caller of an express request, as the inference service counts and checks it. */
export function callerOf(req: Request): Caller {
  const who = principalOf(req);
  const socket = req.socket;
  const key = req.headers[ROUTE_KEY_HEADER];
  const caller: Caller = { who, client: clientKey(who, req.ip ?? socket.remoteAddress ?? ''), gone: () => socket.destroyed };
  if (typeof key === 'string' && key) caller.routeKey = key.slice(0, MAX_ROUTE_KEY);
  return caller;
}

export function v2Router(d: ProducerDeps): Router {
  const r = Router();
  const service = inferenceFor(d);
  const json = jsonBody(d.cfg);

  const resolve = async (req: Request): Promise<VersionRecord> => {
    const { name, version } = req.params as { name: string; version?: string };
    await assertReadable(d.registry, name, principalOf(req));
    return d.registry.resolve(version === undefined ? name : `${name}@${version}`);
  };

  // Inference first: it is the hot route, and the router tries routes in order.
  const infer = (req: Request) => {
    const { name, version } = req.params as { name: string; version?: string };
    const value = req.body;
    // Only the packed request lives on while the answer is awaited: tens of requests are in
    // flight at once, and every live byte is copied again by each young-generation GC.
    req.body = undefined;
    return service.infer(name, version, value, callerOf(req));
  };
  // The version that answered, also in a header: on a weighted alias it is chosen per request.
  const send = (res: Response, a: Answer) => {
    res.setHeader(VERSION_HEADER, String(a.model.version));
    sendJson(res, jsonAnswer(a));
  };
  const body = inferBody(d.cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024, json);
  r.post('/v2/models/:name/infer', body, async (req, res) => send(res, await infer(req)));
  r.post('/v2/models/:name/versions/:version/infer', body, async (req, res) => send(res, await infer(req)));

  r.get('/v2', (_req, res) => void res.json({ name: 'modelq', version: SERVER_VERSION, extensions: [] }));
  r.get('/v2/health/live', (_req, res) => void res.json({ live: true }));
  r.get('/v2/health/ready', async (_req, res) => {
    try {
      await d.redis.ping();
      res.json({ ready: true });
    } catch {
      res.status(503).json({ error: 'not ready: Redis does not answer' });
    }
  });

  const metadata = async (req: Request) => modelMetadata(d.registry, await resolve(req));
  r.get('/v2/models/:name', async (req, res) => void res.json(await metadata(req)));
  r.get('/v2/models/:name/versions/:version', async (req, res) => void res.json(await metadata(req)));

  // Ready: the version exists and at least one live worker consumes the infer queue.
  const ready = async (req: Request) => {
    await resolve(req);
    const workers = await readWorkerStats(d.redis, d.prefix);
    if (!workers.some((w) => w.queues.includes('infer'))) throw new AppError('unavailable', 'no worker is consuming the infer queue');
    return { ready: true };
  };
  r.get('/v2/models/:name/ready', async (req, res) => void res.json(await ready(req)));
  r.get('/v2/models/:name/versions/:version/ready', async (req, res) => void res.json(await ready(req)));

  return r;
}

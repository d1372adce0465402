// The dashboard's express app: bull-board over every platform queue (read-only unless admin is
// set) plus /healthz. Built here without a port so tests mount it directly; main.ts listens.
import express from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { allows, type KeyRing, OPEN_PRINCIPAL, type Principal, presentedKey } from '../core/auth.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import { ALL_QUEUES, type Queues } from '../core/queues.ts';

export interface DashboardOptions {
  /** Process-wide queue singletons; the board reuses their connection. */
  queues: Queues;
  /**
   * Allow mutating actions (retry, clean, remove, pause, add...). Default in config: false, so a
   * board that anyone on the network can reach cannot drop a batch by a misclick.
   */
  admin: boolean;
  /** Where the board is mounted, default '/'. /healthz always stays at the root. */
  basePath?: string;
  /**
   * API keys. When there are any, the board is for platform operators only: it shows every
   * tenant's jobs (inputs and results included), so every request needs a key with the `platform`
   * scope (HTTP basic auth with the key as password, or a bearer header), which may also act on
   * jobs; a tenant's `admin` key is refused. `admin` above is then ignored.
   */
  keys?: KeyRing;
  /** Where the audit lines of actions go. Default: a logger of its own at info. */
  logger?: Logger;
}

const READS = ['GET', 'HEAD', 'OPTIONS'];

export function buildDashboard({ queues, admin, basePath = '/', keys, logger = createLogger('dashboard', 'info') }: DashboardOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');

  // Registered before the board so a board mounted at '/' can never shadow it.
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  // Every action (refused ones too) is audited like an API call: who, what, the answer.
  const principals = new WeakMap<express.Request, Principal>();
  app.use((req, res, next) => {
    if (READS.includes(req.method)) return next();
    res.on('finish', () => {
      const p = principals.get(req);
      logger.info({ audit: true, via: 'dashboard', tenant: p?.tenant ?? null, keyId: p?.keyId ?? null, method: req.method, route: req.path.slice(0, 200), status: res.statusCode }, 'audit');
    });
    next();
  });

  const guarded = !!keys && keys.size > 0;
  if (guarded) {
    app.use((req, res, next) => {
      const key = presentedKey(req.headers.authorization);
      const p = key ? keys.authenticate(key) : null;
      if (!p) {
        res.setHeader('WWW-Authenticate', 'Basic realm="modelq dashboard"');
        return void res.status(401).json({ error: { code: 'unauthorized', message: key ? 'unknown API key' : 'an API key is required (basic auth password or bearer)' } });
      }
      principals.set(req, p);
      if (!allows(p, 'platform')) {
        return void res.status(403).json({ error: { code: 'forbidden', message: 'the dashboard shows every tenant\'s jobs: it needs a key with the "platform" scope (a tenant\'s jobs are at /v1/jobs and /v1/batches)' } });
      }
      next();
    });
    admin = true; // actions are allowed to platform operators, per key
  } else {
    app.use((req, _res, next) => { principals.set(req, OPEN_PRINCIPAL); next(); });
  }

  const serverAdapter = new ExpressAdapter().setBasePath(basePath);
  createBullBoard({
    // readOnlyMode makes bull-board answer 405 to every mutating API call and also turns off retries.
    queues: ALL_QUEUES.map((name) => new BullMQAdapter(queues.queue(name), { readOnlyMode: !admin })),
    serverAdapter,
    options: { uiConfig: { boardTitle: admin ? 'modelq (admin)' : 'modelq' } },
  });
  app.use(basePath, serverAdapter.getRouter());
  return app;
}

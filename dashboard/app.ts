// The dashboard's express app: bull-board over every platform queue (read-only unless admin is
// set) plus /healthz. Built here without a port so tests mount it directly; main.ts listens.
import express from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { allows, type KeyRing, presentedKey } from '../core/auth.ts';
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
   * API keys. When there are any, the board needs one (HTTP basic auth with the key as password,
   * or a bearer header) with the `read` scope, and acting on jobs needs `admin`; `admin` above is
   * then ignored.
   */
  keys?: KeyRing;
}

export function buildDashboard({ queues, admin, basePath = '/', keys }: DashboardOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');

  // Registered before the board so a board mounted at '/' can never shadow it.
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
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
      const acting = !['GET', 'HEAD', 'OPTIONS'].includes(req.method);
      const scope = acting ? 'admin' : 'read';
      if (!allows(p, scope)) return void res.status(403).json({ error: { code: 'forbidden', message: `this key lacks the "${scope}" scope` } });
      next();
    });
    admin = true; // actions are allowed by the check above, per key
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

// The dashboard's express app: the results UI at / (static pages fed by the producer's API through
// the /api proxy, plus a little JSON of its own under /ui), bull-board under /queues, /healthz.
// Built here without a port so tests mount it directly; main.ts listens.
import path from 'node:path';
import express from 'express';
import type { Redis } from 'ioredis';
import type { KeyRing, Principal } from '../core/auth.ts';
import { createLogger, type Logger } from '../core/logger.ts';
import type { Queues } from '../core/queues.ts';
import { mountBoard } from './board.ts';
import { producerProxy } from './proxy.ts';
import { Tickets } from './tickets.ts';
import { uiApi } from './ui-api.ts';

export interface DashboardOptions {
  /** Process-wide queue singletons, for the board and the job index. */
  queues: Queues;
  /**
   * For the UI's job index (cancel flags) and worker figures. Default: none, and those two routes
   * answer 503 (bull-board and the /api proxy work without it).
   */
  redis?: Redis;
  /**
   * Allow mutating actions on the board (retry, clean, remove, pause, add...). Default in config:
   * false, so a board that anyone on the network can reach cannot drop a batch by a misclick.
   */
  admin: boolean;
  /** Where bull-board is mounted, default '/queues'. The UI is at '/', /healthz always at the root. */
  basePath?: string;
  /**
   * API keys. When there are any, the board is for platform operators only: it shows every
   * tenant's jobs (inputs and results included), so every request needs a key with the `platform`
   * scope (HTTP basic auth with the key as password, or a bearer header), which may also act on
   * jobs; a tenant's `admin` key is refused. `admin` above is then ignored. The UI asks for a key.
   */
  keys?: KeyRing;
  /** The producer the UI's /api/* calls go to. Default: none, and /api answers 502 saying so. */
  producerUrl?: string;
  /** Where the audit lines of actions go. Default: a logger of its own at info. */
  logger?: Logger;
}

const READS = ['GET', 'HEAD', 'OPTIONS'];
const UI_DIR = path.join(import.meta.dirname, 'ui');
const UPLOT_DIR = path.join(import.meta.dirname, '..', 'node_modules', 'uplot', 'dist');

export function buildDashboard({
  queues,
  redis,
  admin,
  basePath = '/queues',
  keys,
  producerUrl,
  logger = createLogger('dashboard', 'info'),
}: DashboardOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');

  // Registered first so nothing mounted later can shadow it.
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  // Every action (refused ones too) is audited like an API call: who, what, the answer.
  const seen = new WeakMap<express.Request, Principal>();
  app.use((req, res, next) => {
    if (READS.includes(req.method)) return next();
    res.on('finish', () => {
      const p = seen.get(req);
      logger.info(
        {
          audit: true,
          via: 'dashboard',
          tenant: p?.tenant ?? null,
          keyId: p?.keyId ?? null,
          method: req.method,
          route: req.originalUrl.split('?')[0]!.slice(0, 200),
          status: res.statusCode,
        },
        'audit',
      );
    });
    next();
  });

  const tickets = new Tickets();
  mountBoard(app, { queues, admin, basePath, keys, seen, redis });
  app.use(uiApi(queues, redis, keys, tickets, seen));
  app.use(
    '/api',
    producerUrl
      ? producerProxy(producerUrl, tickets)
      : (_req, res) => {
          res.status(502).json({ error: { code: 'bad_gateway', message: 'this dashboard has no producer to ask (MODELQ_PRODUCER_URL)' } });
        },
  );
  // The UI's pages carry no data (it comes from /api with the user's key), so they need no key.
  app.use('/vendor/uplot', express.static(UPLOT_DIR, { index: false }));
  app.use(express.static(UI_DIR, { index: 'index.html' }));
  return app;
}

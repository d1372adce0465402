// The dashboard's express app: bull-board over every platform queue (read-only unless admin is
// set) plus /healthz. Built here without a port so tests mount it directly; main.ts listens.
import express from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
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
}

export function buildDashboard({ queues, admin, basePath = '/' }: DashboardOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');

  // Registered before the board so a board mounted at '/' can never shadow it.
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

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

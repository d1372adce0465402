// bull-board under its base path (default /queues): every platform queue, read-only unless admin.
// With API keys it is for platform operators only: it shows every tenant's job payloads.
import express from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { allows, type KeyRing } from '../core/auth.ts';
import { ALL_QUEUES, type Queues } from '../core/queues.ts';
import { authenticate, type Authenticated } from './principal.ts';

export interface BoardOptions {
  queues: Queues;
  admin: boolean;
  basePath: string;
  keys: KeyRing | undefined;
  /** Where the principal of each request is recorded for the audit line. */
  seen: Authenticated;
}

export function mountBoard(app: express.Express, { queues, admin, basePath, keys, seen }: BoardOptions): void {
  const guarded = !!keys && keys.size > 0;
  if (guarded) {
    app.use(basePath, (req, res, next) => {
      const p = authenticate(req, res, keys, seen, { basicChallenge: true });
      if (!p) return;
      if (!allows(p, 'platform')) {
        return void res.status(403).json({
          error: {
            code: 'forbidden',
            message:
              "the queue board shows every tenant's jobs: it needs a key with the \"platform\" scope (a tenant's own jobs are on the dashboard's Batches and Jobs pages)",
          },
        });
      }
      next();
    });
    admin = true; // actions are allowed to platform operators, per key
  }
  const serverAdapter = new ExpressAdapter().setBasePath(basePath);
  createBullBoard({
    // readOnlyMode makes bull-board answer 405 to every mutating API call and also turns off retries.
    queues: ALL_QUEUES.map((name) => new BullMQAdapter(queues.queue(name), { readOnlyMode: !admin })),
    serverAdapter,
    options: { uiConfig: { boardTitle: admin ? 'modelq (admin)' : 'modelq' } },
  });
  app.use(basePath, serverAdapter.getRouter());
}

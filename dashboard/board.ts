// bull-board under its base path (default /queues): every platform queue, read-only unless admin.
// With API keys it is for platform operators only: it shows every tenant's job payloads.
import express from 'express';
import type { Redis } from 'ioredis';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { allows, type KeyRing } from '../core/auth.ts';
import { ALL_QUEUES, type Queues } from '../core/queues.ts';
import { ConsumerWatch } from './consumers.ts';
import { authenticate, type Authenticated } from './principal.ts';

export interface BoardOptions {
  queues: Queues;
  admin: boolean;
  basePath: string;
  keys: KeyRing | undefined;
  /** Where the principal of each request is recorded for the audit line. */
  seen: Authenticated;
  /** For the live workers' figures: which queues a started worker consumes. */
  redis?: Redis;
}

/**
 * A queue that no worker of its kind was started for (the GPU queues without a cuda worker) says
 * so in its description, and reports its workers as unknown rather than none: bull-board would
 * otherwise flag it "No workers", which reads as a fault. A queue a started worker should consume
 * keeps the board's own warning.
 */
class PlatformQueueAdapter extends BullMQAdapter {
  constructor(
    queue: ConstructorParameters<typeof BullMQAdapter>[0],
    options: ConstructorParameters<typeof BullMQAdapter>[1],
    private readonly watch: ConsumerWatch | undefined,
  ) {
    super(queue, options);
  }

  override getDescription(): string {
    return this.watch?.current[this.getName()]?.notStarted ?? super.getDescription();
  }

  override async getWorkers() {
    const [workers, state] = await Promise.all([super.getWorkers(), this.watch?.read().catch(() => undefined)]);
    if (workers && workers.length === 0 && state?.[this.getName()]?.notStarted) return null;
    return workers;
  }
}

export function mountBoard(app: express.Express, { queues, admin, basePath, keys, seen, redis }: BoardOptions): void {
  const watch = redis ? new ConsumerWatch(redis, queues.prefix, ALL_QUEUES) : undefined;
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
    queues: ALL_QUEUES.map((name) => new PlatformQueueAdapter(queues.queue(name), { readOnlyMode: !admin }, watch)),
    serverAdapter,
    options: { uiConfig: { boardTitle: admin ? 'modelq (admin)' : 'modelq' } },
  });
  app.use(basePath, serverAdapter.getRouter());
}

// The training process (forked by sandbox.ts through child.mjs; it trains or distills): TensorFlow.js's WASM memory only grows and
// training is CPU-bound, so each attempt runs here, away from the worker's event loop and BullMQ locks.
import { AppError } from '../../../core/errors.ts';
import { createStore } from '../../../core/storage/index.ts';
import { runDistill } from './run-distill.ts';
import { runTraining } from './run-training.ts';
import type { FromTrainer, ToTrainer } from './sandbox.ts';

// Orphaned (the worker was killed): stop at once; the retried job resumes from the last checkpoint.
process.on('disconnect', () => process.exit(1));

const send = (m: FromTrainer) =>
  new Promise<void>((resolve) => {
    if (!process.connected) process.exit(1);
    process.send!(m, undefined, undefined, () => resolve());
  });

process.once('message', (m: ToTrainer) => {
  void (async () => {
    try {
      const store = createStore(m.cfg);
      const outcome =
        m.kind === 'distill'
          ? await runDistill(store, m.task, (p) => send({ type: 'progress', progress: p }))
          : await runTraining({
              store,
              jobId: m.jobId,
              job: m.job,
              onProgress: (p) => send({ type: 'progress', progress: p }),
              // Trees stop adding rounds at 80% of the attempt's time limit and keep what they have, instead of being killed at 100%.
              ...(m.cfg.MODELQ_TRAIN_TIMEOUT_S ? { deadline: Date.now() + 0.8 * m.cfg.MODELQ_TRAIN_TIMEOUT_S * 1000 } : {}),
            });
      await send({ type: 'done', outcome });
      process.exit(0);
    } catch (e) {
      const err = e instanceof AppError ? { code: e.code, message: e.message } : { code: 'internal' as const, message: (e as Error)?.stack ?? String(e) };
      await send({ type: 'error', ...err }).catch(() => {});
      process.exit(1);
    }
  })();
});
// Only now ask for the job: a message sent before the listener exists would be lost.
void send({ type: 'ready' });

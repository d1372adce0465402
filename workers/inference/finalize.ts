// Processor for the `batch` queue: `finalize` runs when every chunk of a batch is done (it is the
// flow's parent) and moves the batch to completed, or cancelled after a cancel; `cleanup` runs on a
// schedule and removes batches past their retention, files and records.
import type { Job } from 'bullmq';
import type { BatchStore } from '../../core/batches.ts';
import { AppError } from '../../core/errors.ts';
import { batchKeys, finalizeJobSchema } from '../../core/jobs/batch.ts';
import type { Logger } from '../../core/logger.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { parseJobData, toJobError } from '../processor.ts';

export interface BatchDeps { store: ArtifactStore; batches: BatchStore; logger: Logger; ttlMs: number }

export async function batchProcessor(job: Pick<Job, 'name' | 'data'>, deps: BatchDeps): Promise<unknown> {
  if (job.name === 'cleanup') return cleanup(deps);
  const { batchId } = parseJobData(finalizeJobSchema, job.data, 'finalize');
  const status = await deps.batches.status(batchId);
  if (status === null) throw toJobError(new AppError('not_found', `batch ${batchId} no longer exists`));
  if (status === 'cancelling') {
    await deps.batches.transition(batchId, 'cancelled', ['cancelling']);
    return { status: 'cancelled' };
  }
  if (status === 'completed' || status === 'cancelled' || status === 'failed') return { status }; // a rerun
  await deps.batches.transition(batchId, 'finalizing', ['queued', 'running']);
  const spec = await deps.batches.spec(batchId);
  const outcomes = await deps.batches.outcomes(batchId);
  const missing = spec ? Array.from({ length: spec.chunks }, (_, i) => i).filter((i) => !outcomes.has(i)) : [];
  if (missing.length) {
    // A chunk that was skipped (cancel raced with finalize) has no outcome: the batch was cancelled.
    if ((await deps.batches.status(batchId)) === 'cancelling') {
      await deps.batches.transition(batchId, 'cancelled', ['cancelling']);
      return { status: 'cancelled' };
    }
    await deps.batches.fail(batchId, `chunks ${missing.slice(0, 10).join(', ')} have no result`);
    return { status: 'failed' };
  }
  // Cancel arriving during finalize loses: every chunk is scored.
  await deps.batches.transition(batchId, 'completed', ['finalizing', 'cancelling']);
  return { status: 'completed' };
}

async function cleanup(deps: BatchDeps): Promise<{ removed: number }> {
  const expired = await deps.batches.createdBefore(Date.now() - deps.ttlMs);
  for (const id of expired) {
    await deps.store.deletePrefix(batchKeys.dir(id));
    await deps.batches.remove(id);
  }
  if (expired.length) deps.logger.info({ removed: expired.length }, 'expired batches removed');
  return { removed: expired.length };
}

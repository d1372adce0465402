// Processor for the `batch` queue: `finalize` runs when every chunk of a batch has ended (it is the
// flow's parent; chunks that failed for good are ignored dependencies, so it runs even then) and
// moves the batch to completed, failed (saying why: also when every row failed, with the first
// rows' errors, as OpenAI and SageMaker fail such jobs) or cancelled; `cleanup` runs on a schedule,
// removes batches past their retention and fails batches whose jobs are gone.
import type { Job } from 'bullmq';
import type { BatchStore } from '../../core/batches.ts';
import { AppError, fromFailedReason } from '../../core/errors.ts';
import { jsonlPart } from '../../core/batch-parts.ts';
import { batchKeys, finalizeJobSchema, type BatchSpec } from '../../core/jobs/batch.ts';
import type { Logger } from '../../core/logger.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import { writeManifest } from './manifest.ts';
import { compareShadowBatch } from './batch-compare.ts';
import { parseJobData, toJobError } from '../processor.ts';

export interface BatchDeps {
  store: ArtifactStore;
  batches: BatchStore;
  logger: Logger;
  ttlMs: number;
  /** Whether the batch's flow still has its parent job; the reaper fails batches whose jobs are gone. Default: always. */
  flowExists?: (batchId: string) => Promise<boolean>;
  /** How old a batch must be before the reaper looks at it, so a flow being added is never reaped. Default 60 s. */
  reapAfterMs?: number;
  /** The stores of batches by reference (their output prefixes). */
  objects?: ObjectStores;
}

type BatchJob = Pick<Job, 'name' | 'data'> & Partial<Pick<Job, 'attemptsMade' | 'opts' | 'getIgnoredChildrenFailures'>>;

export async function batchProcessor(job: BatchJob, deps: BatchDeps): Promise<unknown> {
  if (job.name === 'cleanup') return cleanup(deps);
  // The gate of an upload scored as it arrives (producer/batches/upload-stream.ts) is removed when the
  // upload ends; it only runs when its producer stopped mid-upload: the batch can never be complete.
  if (job.name === 'upload') {
    const { batchId } = parseJobData(finalizeJobSchema, job.data, 'upload');
    const spec = await deps.batches.spec(batchId);
    if (spec?.uploading) await deps.batches.fail(batchId, 'the upload never ended (its producer stopped while it arrived)');
    return { status: 'gate' };
  }
  const { batchId } = parseJobData(finalizeJobSchema, job.data, 'finalize');
  try {
    return await finalize(batchId, job, deps);
  } catch (e) {
    const err = toJobError(e);
    // The finalizer itself giving up must still end the batch.
    const last = err.name === 'UnrecoverableError' || (job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1);
    if (last) await deps.batches.fail(batchId, `finalizing failed: ${fromFailedReason(err.message).message}`).catch(() => {});
    throw err;
  }
}

async function finalize(batchId: string, job: BatchJob, deps: BatchDeps): Promise<unknown> {
  const status = await deps.batches.status(batchId);
  if (status === null) throw new AppError('not_found', `batch ${batchId} no longer exists`);
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
    await deps.batches.fail(batchId, await whyMissing(missing, job));
    return { status: 'failed' };
  }
  // A batch none of whose rows could be scored failed as a whole: say why with its first errors.
  let completed = 0;
  let failed = 0;
  for (const o of outcomes.values()) {
    completed += o.completed;
    failed += o.failed;
  }
  if (completed === 0 && failed > 0) {
    await deps.batches.fail(batchId, `every row failed (${failed} of ${failed}); ${await firstErrors(spec, batchId, outcomes, deps)}`);
    return { status: 'failed' };
  }
  // By reference: the manifest goes last, after every part, and only for a batch that completes.
  if (spec?.output) {
    if (!deps.objects) throw new AppError('internal', 'this worker has no object stores for batches by reference');
    await writeManifest(spec, outcomes, deps.objects);
  }
  // A shadow batch: the two versions' outputs compared, before the batch shows as completed.
  if (spec?.shadow) await compareShadowBatch(spec, outcomes, deps.store);
  // Cancel arriving during finalize loses: every chunk is scored.
  await deps.batches.transition(batchId, 'completed', ['finalizing', 'cancelling']);
  return { status: 'completed' };
}

/** How many of the first errors a failed batch's reason quotes. */
const QUOTED_ERRORS = 3;

/** "the first errors: row 0: ...; row 1: ...", read from the start of the first error part that has any. */
async function firstErrors(spec: BatchSpec | null, batchId: string, outcomes: Map<number, { failed: number }>, deps: BatchDeps): Promise<string> {
  const index = [...outcomes.entries()].filter(([, o]) => o.failed > 0).sort(([a], [b]) => a - b)[0]?.[0];
  if (index === undefined) return 'no error lines were found';
  const quoted: string[] = [];
  try {
    const { store, key } = spec ? jsonlPart(spec, 'errors', index, deps.store, deps.objects) : { store: deps.store, key: batchKeys.errors(batchId, index) };
    const size = (await store.stat(key))?.bytes ?? 0;
    const parts: Buffer[] = [];
    if (size > 0) for await (const b of await store.read(key, { start: 0, end: Math.min(size, 64 * 1024) })) parts.push(b as Buffer);
    const text = Buffer.concat(parts).toString('utf8');
    for (const line of text.split('\n').slice(0, QUOTED_ERRORS)) {
      try {
        const e = JSON.parse(line) as { row: number; error: { message: string } };
        quoted.push(`row ${e.row}: ${e.error.message.slice(0, 300)}`);
      } catch {
        break; // a line cut at the read's end
      }
    }
  } catch {
    return 'the error lines could not be read (GET .../errors)';
  }
  return `the first errors: ${quoted.join('; ')} (all of them: GET .../errors)`;
}

/** "chunk 3 failed: job stalled more than allowable limit; ...", from the chunks' own failures where known. */
async function whyMissing(missing: number[], job: BatchJob): Promise<string> {
  const failures = (await job.getIgnoredChildrenFailures?.().catch(() => ({}))) ?? {};
  const byIndex = new Map<number, string>();
  for (const [key, reason] of Object.entries(failures)) {
    const m = /-(\d+)$/.exec(key);
    if (m) byIndex.set(Number(m[1]), fromFailedReason(String(reason)).message);
  }
  const said = missing
    .filter((i) => byIndex.has(i))
    .slice(0, 5)
    .map((i) => `chunk ${i} failed: ${byIndex.get(i)}`);
  const unsaid = missing.filter((i) => !byIndex.has(i));
  if (unsaid.length)
    said.push(`chunks ${unsaid.slice(0, 10).join(', ')}${unsaid.length > 10 ? ', ...' : ''} have no result (their jobs were removed before they finished)`);
  return said.join('; ');
}

async function cleanup(deps: BatchDeps): Promise<{ removed: number; reaped: number }> {
  const expired = await deps.batches.createdBefore(Date.now() - deps.ttlMs);
  for (const id of expired) {
    await deps.store.deletePrefix(batchKeys.dir(id));
    await deps.batches.remove(id);
  }
  if (expired.length) deps.logger.info({ removed: expired.length }, 'expired batches removed');
  const reaped = await reap(deps);
  return { removed: expired.length, reaped };
}

/** A batch whose flow is gone (its parent removed from the queue, by hand or by retention) would never end: fail it, saying so. */
async function reap(deps: BatchDeps): Promise<number> {
  if (!deps.flowExists) return 0;
  let reaped = 0;
  for (const id of await deps.batches.createdBefore(Date.now() - (deps.reapAfterMs ?? 60_000), 10_000)) {
    const status = await deps.batches.status(id);
    if (status === null || ['completed', 'failed', 'cancelled'].includes(status)) continue;
    if (await deps.flowExists(id)) continue;
    if (status === 'cancelling') await deps.batches.transition(id, 'cancelled', ['cancelling']);
    else await deps.batches.fail(id, "the batch's jobs were removed from the queue before it finished");
    reaped++;
  }
  if (reaped) deps.logger.warn({ reaped }, 'batches without jobs ended');
  return reaped;
}

// The OpenAI batch adapter's processors on the `batch` queue, dispatched by job name: validate (then
// the native batches' flows), expire (the window's end), finalize (the flow's parent, after the
// native batches) and cleanup. Their rows are scored by the native `score` and `finalize` jobs.
import type { Job } from 'bullmq';
import { AppError } from '../../core/errors.ts';
import { batchIdJobSchema, OPENAI_JOBS, openaiKeys } from '../../core/openai-batch.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { finalizeOpenaiBatch } from './openai-finalize.ts';
import { expireOpenaiBatch } from './openai-natives.ts';
import { type OpenaiDeps, validateOpenaiBatch } from './openai-validate.ts';
import { type JobStateOf, reapOpenaiBatches } from './openai-reaper.ts';

type OpenaiJobDeps = OpenaiDeps & { ttlMs: number; jobState?: JobStateOf; reapAfterMs?: number };

export async function openaiProcessor(job: Pick<Job, 'name' | 'data'> & Partial<Pick<Job, 'attemptsMade' | 'opts'>>, d: OpenaiJobDeps): Promise<unknown> {
  if (job.name === OPENAI_JOBS.cleanup) return cleanup(d);
  try {
    if (job.name === OPENAI_JOBS.validate) return await validateOpenaiBatch(parseJobData(batchIdJobSchema, job.data, job.name).batchId, d);
    if (job.name === OPENAI_JOBS.finalize) return await finalizeOpenaiBatch(parseJobData(batchIdJobSchema, job.data, job.name).batchId, d);
    if (job.name === OPENAI_JOBS.expire) return await expireOpenaiBatch(parseJobData(batchIdJobSchema, job.data, job.name).batchId, d);
    throw new AppError('bad_request', `unknown job name ${job.name}`);
  } catch (e) {
    const err = toJobError(e);
    const last = err.name === 'UnrecoverableError' || (job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1);
    const batchId = (job.data as { batchId?: unknown })?.batchId;
    // An expire that gives up leaves the batch to run to its end: it is not the batch's failure.
    if (last && typeof batchId === 'string' && job.name !== OPENAI_JOBS.expire) {
      await d.openai.setFields(batchId, {
        errors: JSON.stringify([{ code: 'server_error', message: `${job.name}: ${err.message}`, param: null, line: null }]),
      });
      await d.openai.transition(batchId, 'failed', ['validating', 'in_progress', 'finalizing', 'cancelling']);
    }
    throw err;
  }
}

/**
 * Retention: batches (records and line maps) and files older than MODELQ_BATCH_TTL are removed (their
 * native batches by the native cleanup); then batches that nothing will end any more are ended (openai-reaper.ts).
 */
async function cleanup(d: OpenaiJobDeps): Promise<{ removed: number; reaped: number }> {
  const before = Date.now() - d.ttlMs;
  const batches = await d.openai.createdBefore('batches', before);
  for (const id of batches) {
    await d.store.deletePrefix(openaiKeys.dir(id));
    await d.openai.removeBatch(id);
  }
  const files = await d.openai.createdBefore('files', before);
  for (const id of files) {
    const f = await d.openai.anyFile(id);
    await d.store.delete(openaiKeys.file(id)).catch(() => {});
    if (f) await d.openai.deleteFile(f);
  }
  return { removed: batches.length + files.length, reaped: await reapOpenaiBatches(d) };
}

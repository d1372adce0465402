// The OpenAI batch flow's processors: validate (batch queue), lines (score queue) and finalize
// (batch queue: the flow's parent, run when every chunk is done), dispatched by job name.
import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import { AppError } from '../../core/errors.ts';
import { batchIdJobSchema, type BatchRecord, linesJobSchema, OPENAI_JOBS, openaiKeys, type OpenaiStatus } from '../../core/openai-batch.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { type LinesDeps, processOpenaiLines } from './openai-lines.ts';
import { validateOpenaiBatch } from './openai-validate.ts';
import { type JobStateOf, reapOpenaiBatches } from './openai-reaper.ts';

type OpenaiJobDeps = LinesDeps & { ttlMs: number; jobState?: JobStateOf; reapAfterMs?: number };

export async function openaiProcessor(job: Pick<Job, 'name' | 'data'> & Partial<Pick<Job, 'attemptsMade' | 'opts'>>, d: OpenaiJobDeps): Promise<unknown> {
  if (job.name === OPENAI_JOBS.cleanup) return cleanup(d);
  try {
    if (job.name === OPENAI_JOBS.validate) return await validateOpenaiBatch(parseJobData(batchIdJobSchema, job.data, job.name).batchId, d);
    if (job.name === OPENAI_JOBS.finalize) return await finalize(parseJobData(batchIdJobSchema, job.data, job.name).batchId, d);
    if (job.name === OPENAI_JOBS.lines) return await lines(job, d);
    throw new AppError('bad_request', `unknown job name ${job.name}`);
  } catch (e) {
    const err = toJobError(e);
    const last = err.name === 'UnrecoverableError' || (job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1);
    const batchId = (job.data as { batchId?: unknown })?.batchId;
    if (last && typeof batchId === 'string') {
      await d.openai.setFields(batchId, {
        errors: JSON.stringify([{ code: 'server_error', message: `${job.name}: ${err.message}`, param: null, line: null }]),
      });
      await d.openai.transition(batchId, 'failed', ['validating', 'in_progress', 'finalizing', 'cancelling']);
    }
    throw err;
  }
}

async function lines(job: Pick<Job, 'data'>, d: LinesDeps) {
  const chunk = parseJobData(linesJobSchema, job.data, OPENAI_JOBS.lines);
  const b = await d.openai.batch(chunk.batchId);
  if (!b) throw new AppError('not_found', `batch ${chunk.batchId} no longer exists`);
  // Cancelled (or failed): no new chunk starts.
  if (b.fields.status !== 'in_progress') return { skipped: true };
  const counts = await processOpenaiLines(chunk, b.record, d);
  await d.openai.recordChunk(chunk.batchId, chunk.index, counts);
  return counts;
}

/** The file id of a batch's output or error file: derived from the batch id, so a rerun replaces it. */
const fileIdOf = (batchId: string, kind: string) => `file-${createHash('sha256').update(`${batchId}/${kind}`).digest('hex').slice(0, 24)}`;

/** Concatenates the chunks' parts (in input order) into one file of the tenant; null when empty. */
async function compose(record: BatchRecord, kind: 'output' | 'errors', d: LinesDeps & { ttlMs: number }): Promise<string | null> {
  const store = d.store;
  async function* parts() {
    for (let i = 0; i < (record.chunks ?? 0); i++) {
      const key = kind === 'output' ? openaiKeys.output(record.id, i) : openaiKeys.errors(record.id, i);
      if (!(await store.stat(key))) continue; // skipped after a cancel
      for await (const b of await store.read(key)) yield b as Buffer;
    }
  }
  const id = fileIdOf(record.id, kind);
  const put = await store.put(openaiKeys.file(id), parts());
  if (put.bytes === 0) {
    await store.delete(openaiKeys.file(id)).catch(() => {});
    return null;
  }
  const now = Math.floor(Date.now() / 1000);
  await d.openai.putFile({
    id,
    tenant: record.tenant,
    bytes: put.bytes,
    created_at: now,
    expires_at: now + Math.floor(d.ttlMs / 1000),
    filename: `${record.id}_${kind}.jsonl`,
    purpose: kind === 'output' ? 'batch_output' : 'batch_error',
  });
  return id;
}

async function finalize(batchId: string, d: LinesDeps & { ttlMs: number }) {
  const b = await d.openai.batch(batchId);
  if (!b) throw new AppError('not_found', `batch ${batchId} no longer exists`);
  const status = b.fields.status as OpenaiStatus;
  if (status !== 'in_progress' && status !== 'cancelling' && status !== 'finalizing') return { status }; // a rerun
  const counts = await d.openai.chunkCounts(batchId);
  // A batch past its window ends expired with what it has, as OpenAI's do.
  const end: OpenaiStatus = status === 'cancelling' ? 'cancelled' : counts.expired > 0 ? 'expired' : 'completed';
  if (end !== 'cancelled') await d.openai.transition(batchId, 'finalizing', ['in_progress']);
  const [output, errors] = [await compose(b.record, 'output', d), await compose(b.record, 'errors', d)];
  await d.openai.setFields(batchId, { ...(output ? { output_file_id: output } : {}), ...(errors ? { error_file_id: errors } : {}) });
  await d.openai.transition(batchId, end, end === 'cancelled' ? ['cancelling'] : ['finalizing', 'cancelling']);
  return { status: end };
}

/**
 * Retention: batches (records and chunk parts) and files older than MODELQ_BATCH_TTL are removed;
 * then batches that nothing will end any more are ended (openai-reaper.ts).
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

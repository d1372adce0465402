// OpenAI batches always end: the periodic cleanup ends a batch whose validation job failed without
// saying so (stalled past BullMQ's limit), whose jobs are gone, or whose flow failed, and leaves
// alone a batch whose jobs can still end it. Real Redis, real BullMQ jobs and job states.
import { randomBytes } from 'node:crypto';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenaiStore, type BatchRecord } from '../../core/openai-batch.ts';
import { reapOpenaiBatches, type JobStateOf } from '../../workers/inference/openai-reaper.ts';

const prefix = `mqtest-reaper-${randomBytes(4).toString('hex')}`;
let redis: Redis;
let queue: Queue;
let events: QueueEvents;
let store: OpenaiStore;
let jobState: JobStateOf;

beforeAll(async () => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  queue = new Queue('batch', { connection: redis, prefix });
  events = new QueueEvents('batch', { connection: redis.duplicate(), prefix });
  await events.waitUntilReady();
  store = new OpenaiStore(redis, prefix);
  jobState = async (id) => {
    const j = await queue.getJob(id);
    return j ? { state: await j.getState(), failedReason: j.failedReason } : { state: 'unknown' };
  };
});
afterAll(async () => {
  await events?.close();
  await queue?.obliterate({ force: true });
  await queue?.close();
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis?.quit();
});

/** A batch record created ten minutes ago, in the given status. */
async function batch(status: string): Promise<string> {
  const id = `batch_${randomBytes(6).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000) - 600;
  const record: BatchRecord = {
    id,
    tenant: 't',
    endpoint: '/v1/embeddings',
    input_file_id: 'file-x',
    completion_window: '24h',
    metadata: null,
    created_at: created,
    expires_at: created + 86400,
  };
  await store.createBatch(record);
  if (status !== 'validating') await store.setFields(id, { status });
  expect(await store.status(id)).toBe(status);
  return id;
}

/** A job on the batch queue that fails with `reason` (as a stalled job is failed by BullMQ, without our processor's catch). */
async function failedJob(jobId: string, reason: string) {
  const worker = new Worker(
    'batch',
    async () => {
      throw new Error(reason);
    },
    { connection: redis.duplicate(), prefix, autorun: true },
  );
  const job = await queue.add('openai-validate', { batchId: 'x' }, { jobId, attempts: 1 });
  await expect(job.waitUntilFinished(events, 30_000)).rejects.toThrow(reason);
  await worker.close();
}

describe('the OpenAI batch reaper', () => {
  it('ends what nothing else will end, with the reason, and leaves live batches alone', async () => {
    const stalled = await batch('validating');
    await failedJob(`${stalled}-validate`, 'job stalled more than allowable limit');
    const gone = await batch('in_progress');
    const cancelling = await batch('cancelling');
    const live = await batch('in_progress');
    await queue.add('openai-finalize', { batchId: live }, { jobId: `${live}-finalize`, delay: 3_600_000 });
    const young = `batch_${randomBytes(6).toString('hex')}`;
    await store.createBatch({
      id: young,
      tenant: 't',
      endpoint: '/v1/embeddings',
      input_file_id: 'f',
      completion_window: '24h',
      metadata: null,
      created_at: Math.floor(Date.now() / 1000),
      expires_at: 0,
    });

    expect(await reapOpenaiBatches({ openai: store, jobState })).toBe(3);

    expect(await store.status(stalled)).toBe('failed');
    const errors = JSON.parse((await store.batch(stalled))!.fields.errors!) as { message: string }[];
    expect(errors[0]!.message).toBe('openai-validate: job stalled more than allowable limit');
    expect(await store.status(gone)).toBe('failed');
    expect((await store.batch(gone))!.fields.errors).toMatch(/removed from the queue before it finished/);
    expect(await store.status(cancelling)).toBe('cancelled');
    expect(await store.status(live)).toBe('in_progress');
    expect(await store.status(young)).toBe('validating');
    // Nothing left to end: a second pass changes nothing.
    expect(await reapOpenaiBatches({ openai: store, jobState })).toBe(0);
  });
});

// Every batch reaches a final state: a chunk that fails outside its processor (stalled too often,
// lock lost) still lets the finalizer run and say why; cancel then ends in `cancelled`; a failure
// never shows an absolute server path.
import fs from 'node:fs';
import path from 'node:path';
import { UnrecoverableError, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchStore } from '../../core/batches.ts';
import { keyPrefix } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { batchProcessor } from '../../workers/inference/finalize.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const jsonl = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ input: [i, 1, 2, 3] })).join('\n');
const view = async (id: string) => (await fetch(`${p!.url}/v1/batches/${id}`)).json();
const final = (id: string) =>
  until(
    async () => {
      const v = await view(id);
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    90_000,
  );

/** Takes chunk `index` off the score queue and fails it the way BullMQ does when a job stalls too often: outside any processor. */
async function failOutsideProcessor(batchId: string, index: number) {
  const w = new Worker('score', null, { connection: p!.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p!.cfg), autorun: false });
  try {
    for (;;) {
      const job = await w.getNextJob('tok');
      if (!job) throw new Error('no chunk waiting');
      if (job.id === `${batchId}-${index}`) {
        await job.moveToFailed(new UnrecoverableError('job stalled more than allowable limit'), 'tok', false);
        return;
      }
      await job.moveToDelayed(Date.now(), 'tok'); // not ours: back to the queue at once
    }
  } finally {
    await w.close();
  }
}

async function submit(n: number, chunkRows: number) {
  const res = await fetch(`${p!.url}/v1/batches?model=m&chunkRows=${chunkRows}`, { method: 'POST', body: jsonl(n) });
  expect(res.status).toBe(202);
  return (await res.json()).id as string;
}

describe('batches always end', () => {
  it('a chunk failed outside its processor still runs the finalizer, which says why', async () => {
    p = await startPlatform();
    await p.addWorker({ MODELQ_QUEUES: 'model' });
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    const id = await submit(30, 10);
    await failOutsideProcessor(id, 1);
    await p.addWorker({ MODELQ_QUEUES: 'score,batch' });
    const v = await final(id);
    expect(v.status).toBe('failed');
    expect(v.error).toMatch(/chunk 1 failed: job stalled more than allowable limit/);
    expect(v.requestCounts).toMatchObject({ total: 30, completed: 20 });
  });

  it('cancel of such a batch ends in cancelled, never stuck in cancelling', async () => {
    p = await startPlatform();
    await p.addWorker({ MODELQ_QUEUES: 'model' });
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    const id = await submit(30, 10);
    await failOutsideProcessor(id, 0);
    expect((await fetch(`${p.url}/v1/batches/${id}/cancel`, { method: 'POST' })).status).toBe(202);
    await p.addWorker({ MODELQ_QUEUES: 'score,batch' });
    expect((await final(id)).status).toBe('cancelled');
  });

  it("a batch whose jobs were removed from the queue is failed by the cleanup's reaper, saying so", async () => {
    p = await startPlatform();
    await p.addWorker({ MODELQ_QUEUES: 'model' });
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    const kept = await submit(10, 10);
    const id = await submit(30, 10);
    await p.deps.queues.queue('batch').remove(id, { removeChildren: true }); // as bull-board's "remove" does
    const flows = p.deps.queues.queue('batch');
    const deps = {
      store: p.deps.store,
      batches: new BatchStore(p.redis, keyPrefix(p.cfg)),
      logger: createLogger('test', 'silent'),
      ttlMs: 86_400_000,
      reapAfterMs: 0,
      flowExists: async (b: string) => (await flows.getJobState(b)) !== 'unknown',
    };
    expect(await batchProcessor({ name: 'cleanup', data: {} }, deps)).toEqual({ removed: 0, reaped: 1 });
    expect(await view(id)).toMatchObject({ status: 'failed', error: expect.stringMatching(/jobs were removed/) });
    expect((await view(kept)).status).toBe('queued'); // its flow is there: left alone
  });

  it('says what is missing, never where on the server', async () => {
    p = await startPlatform();
    await p.addWorker({ MODELQ_QUEUES: 'model' });
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    const id = await submit(5, 10);
    // The input: one object (a form's file) or, for a raw body scored as it arrived, one per chunk.
    const dir = path.join(p.cfg.MODELQ_DATA_DIR, 'batches', id);
    for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('input'))) fs.rmSync(path.join(dir, f));
    await p.addWorker({ MODELQ_QUEUES: 'score,batch' });
    const v = await final(id);
    expect(v.status).toBe('failed');
    expect(v.error).toMatch(/input/);
    expect(v.error).not.toContain(path.resolve(p.cfg.MODELQ_DATA_DIR));
    expect(v.error).not.toMatch(/'\/[^']*\//);
  }, 120_000);
});

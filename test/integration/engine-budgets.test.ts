// Budgets of engine work on a real worker: a batch chunk that hangs its engine thread (as a hostile
// Parquet file's parser once did) or exhausts the thread's heap fails with the limit named, is not
// retried forever (the batch ends `failed`), cancel of such a batch ends it `cancelled`, and the
// worker process stays up answering other models' online requests on fresh threads meanwhile.
// The faults come from the engine's test hook (workers/engine/test-faults.ts, MODELQ_TEST_FAULTS).
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { rows } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 4;
const CHUNK_TIMEOUT_MS = 10_000;

beforeAll(async () => {
  p = await startPlatform({
    workers: 1,
    env: {
      MODELQ_TEST_FAULTS: '1',
      MODELQ_ENGINE_THREADS: '2',
      MODELQ_CHUNK_TIMEOUT_MS: String(CHUNK_TIMEOUT_MS),
      MODELQ_POISON_ATTEMPTS: '2',
      MODELQ_ENGINE_THREAD_MEMORY_MB: '96',
    },
  });
  expect((await uploadModel(p.url, 'hostile', buildMlp({ sizes: [F, 8, 3], seed: 3 }))).status).toBe(201);
  expect((await uploadModel(p.url, 'other', buildMlp({ sizes: [F, 8, 2], seed: 4 }))).status).toBe(201);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

/** A small JSONL batch whose first row carries a fault marker (the rest are ordinary rows). */
function hostileBody(marker: string): string {
  const x = rows(20, F, 5);
  const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: i, input: Array.from(x.subarray(i * F, (i + 1) * F)) }));
  lines[0] = JSON.stringify({ id: 0, tag: marker, input: Array.from(x.subarray(0, F)) });
  return lines.join('\n');
}

async function submit(marker: string): Promise<string> {
  const res = await fetch(`${p.url}/v1/batches?model=hostile`, { method: 'POST', body: hostileBody(marker) });
  expect(res.status).toBe(202);
  return (await res.json()).id as string;
}

const view = async (id: string) => (await fetch(`${p.url}/v1/batches/${id}`)).json();
const waitStatus = (id: string, statuses: string[], timeoutMs: number) =>
  until(
    async () => {
      const v = await view(id);
      return statuses.includes(v.status) ? v : null;
    },
    `batch ${id} to reach ${statuses}`,
    timeoutMs,
  );

/** One online request to the other model; its answer must come whatever the hostile batch does. */
async function otherAnswers(): Promise<void> {
  const res = await postJson(`${p.url}/v2/models/other/infer`, { inputs: [{ name: 'input', shape: [1, F], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }] });
  expect(res.status).toBe(200);
  expect((await res.json()).outputs[0].shape).toEqual([1, 2]);
}

const workerUp = () => p.workers[0]!.child.exitCode === null && p.workers[0]!.child.signalCode === null;

describe('engine budgets', () => {
  it('a chunk that hangs its engine thread ends its batch failed, naming the time limit, after MODELQ_POISON_ATTEMPTS', async () => {
    const id = await submit('__modelq_test_hang__');
    await waitStatus(id, ['running'], 30_000);
    await otherAnswers(); // served by the other engine thread while the hostile chunk holds one
    const done = await waitStatus(id, ['completed', 'failed', 'cancelled'], 120_000);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/exceeded its time limit of 10000 ms \(MODELQ_CHUNK_TIMEOUT_MS\)/);
    expect(done.error).toMatch(/attempt 2 of MODELQ_POISON_ATTEMPTS=2/);
    expect(workerUp()).toBe(true);
    await otherAnswers(); // and on a fresh thread after it
  }, 180_000);

  it('a chunk that exhausts its engine thread heap fails with MODELQ_ENGINE_THREAD_MEMORY_MB named; the worker stays up', async () => {
    const id = await submit('__modelq_test_oom__');
    const done = await waitStatus(id, ['completed', 'failed', 'cancelled'], 120_000);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/ran its engine thread out of memory \(MODELQ_ENGINE_THREAD_MEMORY_MB=96 MiB\)/);
    expect(workerUp()).toBe(true);
    await otherAnswers();
  }, 180_000);

  it('cancel of a batch whose chunk hangs ends it cancelled (the stuck run is stopped)', async () => {
    const id = await submit('__modelq_test_hang__');
    await waitStatus(id, ['running'], 30_000);
    const cancel = await fetch(`${p.url}/v1/batches/${id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    const done = await waitStatus(id, ['completed', 'failed', 'cancelled'], 120_000);
    expect(done.status).toBe('cancelled');
    // The cancel stopped the stuck chunk itself: its job ended skipped in its first attempt, not by
    // its time limit (which would have failed that attempt and skipped on a retry).
    const q = new Queue('score', { connection: p.redis, prefix: keyPrefix(p.cfg) });
    const chunk = await q.getJob(`${id}-0`);
    await q.close();
    expect(chunk?.returnvalue).toMatchObject({ skipped: true });
    expect(chunk?.attemptsMade).toBe(1);
    expect(chunk?.stacktrace ?? []).toEqual([]);
    expect(workerUp()).toBe(true);
    await otherAnswers();
  }, 120_000);
});

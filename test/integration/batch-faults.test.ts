// Batches under trouble: a worker killed with SIGKILL mid-batch changes nothing in the output,
// cancel leaves a consistent partial output, and expired batches are removed by the platform.
import fs from 'node:fs';
import path from 'node:path';
import { QueueEvents } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { rows } from '../fixtures/models.ts';
import { expectExactOutput } from '../helpers/batch-output.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform | undefined;
afterEach(async () => {
  await p?.stop();
  p = undefined;
});

const F = 16;
const model = buildMlp({ sizes: [F, 512, 512, 4], seed: 23 });
const jsonl = (x: Float32Array, n: number) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, input: Array.from(x.subarray(i * F, (i + 1) * F)) })).join('\n');

async function view(id: string) {
  return (await fetch(`${p!.url}/v1/batches/${id}`)).json();
}
const waitStatus = (id: string, statuses: string[], timeoutMs = 120_000) =>
  until(
    async () => {
      const v = await view(id);
      return statuses.includes(v.status) ? v : null;
    },
    `batch ${id} to reach ${statuses}`,
    timeoutMs,
  );

describe('batch faults', () => {
  it('a worker killed with SIGKILL mid-batch does not change the output: every row exactly once', async () => {
    p = await startPlatform({ workers: 2, env: { MODELQ_JOB_LOCK_MS: '3000', MODELQ_SCORE_CONCURRENCY: '1' } });
    expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
    const n = 30_000;
    const x = rows(n, F, 8);
    const events = new QueueEvents('score', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
    await events.waitUntilReady();
    const firstDone = new Promise<void>((r) => events.once('completed', () => r()));
    let stalled = 0;
    events.on('stalled', () => {
      stalled++;
    });
    const res = await fetch(`${p.url}/v1/batches?model=m&chunkRows=1000`, { method: 'POST', body: jsonl(x, n) });
    const { id } = await res.json();
    await firstDone; // the batch is under way
    const victim = p.workers[0]!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    const done = await waitStatus(id, ['completed', 'failed', 'cancelled']);
    await events.close();
    expect(stalled).toBeGreaterThan(0); // the kill did interrupt a chunk, which ran again
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    await expectExactOutput(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text(), model, x, n, F);
  });

  it('cancel stops new chunks and leaves a consistent partial output', async () => {
    p = await startPlatform({ workers: 1, env: { MODELQ_SCORE_CONCURRENCY: '1' } });
    expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
    const n = 40_000;
    const res = await fetch(`${p.url}/v1/batches?model=m&chunkRows=500`, { method: 'POST', body: jsonl(rows(n, F, 2), n) });
    const { id } = await res.json();
    await until(async () => (await view(id)).chunks.done >= 1, 'a first chunk');
    const cancel = await fetch(`${p.url}/v1/batches/${id}/cancel`, { method: 'POST' });
    expect(cancel.status).toBe(202);
    expect(['cancelling', 'cancelled']).toContain((await cancel.json()).status);
    const done = await waitStatus(id, ['cancelled', 'completed', 'failed']);
    expect(done.status).toBe('cancelled');
    expect(done.requestCounts.completed).toBeGreaterThan(0);
    expect(done.requestCounts.completed).toBeLessThan(n);
    const out = (await (await fetch(`${p.url}/v1/batches/${id}/output`)).text()).trim().split('\n');
    expect(out).toHaveLength(done.requestCounts.completed);
    const rowsOut = out.map((l) => JSON.parse(l).row as number);
    expect(rowsOut).toEqual([...rowsOut].sort((a, b) => a - b));
    const again = await fetch(`${p.url}/v1/batches/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect((await again.json()).error.message).toMatch(/cancelled/);
  });

  it('removes expired batches, records and files', async () => {
    p = await startPlatform({ workers: 1, env: { MODELQ_BATCH_TTL: '1s' } });
    expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
    const { id } = await (await fetch(`${p.url}/v1/batches?model=m`, { method: 'POST', body: jsonl(rows(10, F, 1), 10) })).json();
    await waitStatus(id, ['completed']);
    const dir = path.join(p.cfg.MODELQ_DATA_DIR, 'batches', id);
    expect(fs.existsSync(dir)).toBe(true);
    await new Promise((r) => setTimeout(r, 1100)); // let the one-second retention pass
    // The scheduled cleanup runs at most every minute; run one now through the same queue.
    const events = new QueueEvents('batch', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
    await events.waitUntilReady();
    const job = await p.deps.queues.queue('batch').add('cleanup', {});
    expect(await job.waitUntilFinished(events, 30_000)).toMatchObject({ removed: 1 });
    await events.close();
    expect((await fetch(`${p.url}/v1/batches/${id}`)).status).toBe(404);
    expect(fs.existsSync(dir)).toBe(false);
  });
});

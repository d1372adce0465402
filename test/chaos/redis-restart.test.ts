// Redis dies in the middle of a batch (SIGKILL) and comes back on the same AOF files: the producer
// answers 503 while it is down and recovers by itself, the workers resume, the batch completes
// with every row exactly once. An online request in flight when Redis goes is refused at once as
// retryable (its answer could no longer arrive), not left to its timeout.
import { afterEach, describe, expect, it } from 'vitest';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import { batchBody, expectExactOutput, freePort, model, PrivateRedis } from './helpers.ts';

let p: TestPlatform | undefined;
let redis: PrivateRedis | undefined;
afterEach(async () => {
  await p?.stop().catch(() => {});
  await redis?.stop();
});

describe('chaos: Redis restart', () => {
  it('survives a Redis kill and restart during a batch; 503s while it is down', async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    p = await startPlatform({ workers: 2, env: { MODELQ_REDIS_URL: redis.url, MODELQ_JOB_LOCK_MS: '3000', MODELQ_SCORE_CONCURRENCY: '1' } });
    expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
    const n = 40_000;
    const { body, x } = batchBody(n);
    const { id } = await (await fetch(`${p.url}/v1/batches?model=m&chunkRows=1000`, { method: 'POST', body })).json();
    await until(async () => (await (await fetch(`${p!.url}/v1/batches/${id}`)).json()).chunks.done >= 2, 'two chunks done');

    await redis.kill();
    // While it is down: answers within a second or two, 503 everywhere but liveness.
    for (const path of ['/v1/models', `/v1/batches/${id}`, '/v2/health/ready', '/v2/models/m']) {
      const t0 = Date.now();
      const res = await fetch(`${p.url}${path}`, { signal: AbortSignal.timeout(5000) });
      expect(res.status, path).toBe(503);
      expect(Date.now() - t0).toBeLessThan(2000);
    }
    const infer = await fetch(`${p.url}/v2/models/m/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(0) }] }),
    });
    expect(infer.status).toBe(503);
    expect(typeof (await infer.json()).error).toBe('string');
    expect((await fetch(`${p.url}/v2/health/live`)).status).toBe(200);

    await redis.start(); // same port, same files
    await until(async () => (await fetch(`${p!.url}/v2/health/ready`)).status === 200, 'the producer to recover', 20_000);
    const done = await until(
      async () => {
        const v = await (await fetch(`${p!.url}/v1/batches/${id}`)).json();
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      'the batch to end',
      120_000,
    );
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    await expectExactOutput(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text(), x, n);
    expect(p.workers.every((w) => w.child.exitCode === null)).toBe(true);
  });

  it('refuses an online request in flight when Redis goes as retryable 503 at once, and serves after it is back', async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    p = await startPlatform({ workers: 1, env: { MODELQ_REDIS_URL: redis.url, MODELQ_ONLINE_TRANSPORT: 'streams', MODELQ_INFER_TIMEOUT_MS: '30000' } });
    expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(0) }] });
    const infer = () =>
      fetch(`${p!.url}/v2/models/m/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(25_000) });
    expect((await infer()).status).toBe(200);
    const w = p.workers[0]!;
    const queue = p.deps.queues.queue('infer');
    await queue.pause(); // the worker reads no entry: the request waits in the stream
    await until(async () => w.lines.some((l) => l.includes('online stream held')), 'the worker to see the pause', 10_000);
    const t0 = Date.now();
    const held = infer();
    await until(async () => (await p!.redis.xlen(`${p!.deps.prefix}:online:infer`)) > 0, 'the request in the stream', 5000);
    await redis.kill();
    const res = await held;
    expect(res.status).toBe(503);
    expect((await res.json()).error).toMatch(/connection to Redis was lost/);
    expect(Date.now() - t0).toBeLessThan(10_000); // long before the 30 s timeout
    await redis.start(); // same files: the pause is still there
    await until(async () => (await fetch(`${p!.url}/v2/health/ready`)).status === 200, 'the producer to recover', 20_000);
    await queue.resume();
    const again = await until(
      async () => {
        const r = await infer();
        return r.status === 200 ? r : null;
      },
      'an answer after the restart',
      30_000,
    );
    expect((await again.json()).outputs[0].data.length).toBeGreaterThan(0);
  });
});

// The stream transport when no worker takes a group: the request ends as a 504 within the timeout
// (never hangs), and its entry is removed from the stream rather than left to pile up; a worker that
// starts afterwards answers the next request. A paused `infer` queue holds the stream's requests.
// SIGTERM lets the entries a worker is running finish.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directRun, rows, SLOW_FEATURES, slowMlp, tinyMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const body = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }] };

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_ONLINE_TRANSPORT: 'streams', MODELQ_INFER_TIMEOUT_MS: '1500' } });
  expect((await uploadModel(p.url, 'm', tinyMlp(5))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

describe('online stream transport without a worker', () => {
  it('answers 504 within the timeout, removes the entry, and serves again once a worker is back', async () => {
    const url = `${p.url}/v2/models/m/infer`;
    expect((await postJson(url, body)).status).toBe(200);
    const key = `${p.deps.prefix}:online:infer`;
    const w = p.workers[0]!;
    w.child.kill('SIGKILL');
    await w.exited;

    const res = await postJson(url, body);
    expect(res.status).toBe(504);
    expect(((await res.json()) as { error: string }).error).toMatch(/timed out/);
    // The answered entry was deleted by its worker, the unanswered one by the producer at the timeout.
    await until(async () => (await p.redis.xlen(key)) === 0, 'the stream emptied', 5000);
    expect(await p.redis.xlen(key)).toBe(0);

    await p.addWorker();
    const again = await postJson(url, body);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toHaveLength(3);
  });
});

describe('online stream transport and a paused infer queue', () => {
  it('holds requests while the queue is paused (they time out, as with BullMQ) and serves them again once resumed', async () => {
    const url = `${p.url}/v2/models/m/infer`;
    const w = p.workers.at(-1)!;
    expect((await postJson(url, body)).status).toBe(200);
    const queue = p.deps.queues.queue('infer');
    await queue.pause(); // what the dashboard's pause does
    try {
      await until(async () => w.lines.some((l) => l.includes('online stream held')), 'the worker to see the pause', 10_000);
      const res = await postJson(url, body);
      expect(res.status).toBe(504);
      expect(((await res.json()) as { error: string }).error).toMatch(/timed out/);
    } finally {
      await queue.resume();
    }
    await until(async () => w.lines.some((l) => l.includes('online stream read again')), 'the worker to see the resume', 10_000);
    const again = await postJson(url, body);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data).toHaveLength(3);
  });
});

describe('online stream transport and SIGTERM', () => {
  it('finishes the entry the worker is running, then exits 0', async () => {
    const q = await startPlatform({ env: { MODELQ_ONLINE_TRANSPORT: 'streams' } });
    try {
      const worker = await q.addWorker({ MODELQ_SHUTDOWN_GRACE_MS: '60000' });
      const slow = slowMlp();
      expect((await uploadModel(q.url, 'slow', slow)).status).toBe(201);
      const n = 512;
      const x = rows(n, SLOW_FEATURES, 5);
      const request = JSON.stringify({ inputs: [{ name: 'input', shape: [n, SLOW_FEATURES], datatype: 'FP32', data: Array.from(x) }] });
      const answer = postJson(`${q.url}/v2/models/slow/infer`, request);
      // Running: the entry is pending under the worker's consumer.
      await until(async () => Number(((await q.redis.xpending(`${q.deps.prefix}:online:infer`, 'workers')) as [number])[0]) > 0, 'the entry taken', 30_000);
      worker.child.kill('SIGTERM');
      const res = await answer;
      expect(res.status).toBe(200);
      const expected = (await directRun(slow, { input: { data: x, dims: [n, SLOW_FEATURES] } })).output!;
      ((await res.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-4));
      expect(await worker.exited).toBe(0);
      expect(worker.lines.some((l) => l.includes('"stopped"'))).toBe(true);
      expect(await q.redis.xlen(`${q.deps.prefix}:online:infer`)).toBe(0); // acknowledged and deleted
    } finally {
      await q.stop();
    }
  });
});

// Backpressure: past MODELQ_MAX_INFLIGHT online requests the producer answers 429 with Retry-After
// at once (fast path and express path), and while Redis is nearly full it refuses new work with 503
// rather than queueing it until Redis's writes fail.
import { afterEach, describe, expect, it } from 'vitest';
import { backpressureFor } from '../../producer/inference/backpressure.ts';
import { freePort, PrivateRedis } from '../chaos/helpers.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform | undefined;
let redis: PrivateRedis | undefined;
afterEach(async () => {
  await p?.stop();
  await redis?.stop();
  p = undefined;
  redis = undefined;
});

const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
const infer = (url: string, init: RequestInit = {}) =>
  fetch(`${url}/v2/models/m/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, ...init });

describe('backpressure', () => {
  it('answers 429 with Retry-After past MODELQ_MAX_INFLIGHT, and frees its slots when answers come', async () => {
    p = await startPlatform({ env: { MODELQ_MAX_INFLIGHT: '4', MODELQ_INFER_TIMEOUT_MS: '60000' } });
    await p.addWorker({ MODELQ_QUEUES: 'model' }); // nothing consumes `infer` yet: requests stay in flight
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    const gate = backpressureFor(p.deps).gate;
    const held = Array.from({ length: 4 }, () => infer(p!.url));
    await until(() => gate.inFlight === 4, 'four requests in flight');
    const fast = await infer(p.url);
    expect(fast.status).toBe(429);
    expect(fast.headers.get('retry-after')).toBe('1');
    expect((await fast.json()).error).toMatch(/MODELQ_MAX_INFLIGHT=4/);
    // A chunked body takes the express route: the same answer.
    const chunked = await infer(p.url, { body: new Blob([body]).stream(), duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(429);
    expect(chunked.headers.get('retry-after')).toBe('1');
    await p.addWorker({ MODELQ_QUEUES: 'infer' });
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(gate.inFlight).toBe(0);
    expect((await infer(p.url)).status).toBe(200);
  });

  it('refuses new work with 503 and Retry-After while Redis is nearly full, and takes it again once it drains', async () => {
    redis = new PrivateRedis(await freePort(), ['--maxmemory', '32mb']);
    await redis.start();
    p = await startPlatform({ workers: 1, env: { MODELQ_REDIS_URL: redis.url } });
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    const memory = backpressureFor(p.deps).memory;
    await memory.read();
    expect(memory.figures.max).toBe(32 * 1024 * 1024);
    // Someone else's data takes Redis past 90% of maxmemory (in pieces: one big SET would be refused whole).
    const fillers: string[] = [];
    while (memory.figures.used < memory.figures.max * 0.93) {
      fillers.push(`filler:${fillers.length}`);
      await p.redis.set(fillers.at(-1)!, Buffer.alloc(256 * 1024, 1));
      await memory.read();
    }
    for (const res of [await infer(p.url), await fetch(`${p.url}/v1/batches?model=m`, { method: 'POST', body: '{"input":[1,2,3,4]}' })]) {
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
    }
    expect((await fetch(`${p.url}/v1/models`)).status).toBe(200); // reads still pass
    await p.redis.del(...fillers);
    await memory.read();
    expect((await infer(p.url)).status).toBe(200);
  });
});

// The stream transport when no worker takes a group: the request ends as a 504 within the timeout
// (never hangs), and its entry is removed from the stream rather than left to pile up; a worker that
// starts afterwards answers the next request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinyMlp } from '../fixtures/models.ts';
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

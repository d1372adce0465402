// What the issue 25 review saw, replayed with two tenants: while one tenant's hostile Parquet
// batches are processed (case 1: dictionary indices ending mid-varint, which spun an engine thread
// forever; case 6: a page declaring 1e8 values), the other tenant's online requests keep being
// answered (two such files used to turn them into 504s), the hostile batches end failed naming what
// is wrong, and the worker process stays up. Before the fix this test fails: the spinning files held
// the engine threads, online requests waited out MODELQ_INFER_TIMEOUT_MS, the batches stayed running.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { hostileFiles } from '../helpers/parquet-hostile.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'mallory-key-0123456789': { tenant: 'mallory', scopes: ['admin'] },
  'alice-key-0123456789': { tenant: 'alice', scopes: ['admin'] },
};
const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const MALLORY = auth('mallory-key-0123456789');
const ALICE = auth('alice-key-0123456789');

let p: TestPlatform;
beforeAll(async () => {
  // Short infer timeout: an online request held by a stuck engine comes back as 504 well within the test.
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_INFER_TIMEOUT_MS: '10000', MODELQ_ENGINE_THREADS: '2' } });
  for (const [key, name, sizes] of [
    [MALLORY, 'one', [1, 4, 2]],
    [ALICE, 'mine', [4, 8, 3]],
  ] as const) {
    const res = await fetch(`${p.url}/v1/models/${name}/versions`, {
      method: 'POST',
      body: Buffer.from(buildMlp({ sizes: [...sizes], seed: 2 })),
      headers: { ...key, 'content-type': 'application/octet-stream' },
    });
    expect(res.status).toBe(201);
  }
});
afterAll(async () => {
  await p?.stop();
});

const aliceInfer = () =>
  fetch(`${p.url}/v2/models/mine/infer`, {
    method: 'POST',
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
    headers: { ...ALICE, 'content-type': 'application/json' },
    signal: AbortSignal.timeout(30_000),
  });

describe('a hostile neighbour', () => {
  it("another tenant's online requests are answered while hostile Parquet batches are processed; those end failed with the reason", async () => {
    const { spin, hugePage } = hostileFiles();
    const ids: { id: string; why: RegExp }[] = [];
    // Two of each, as in the review: more than one engine thread's worth.
    for (const [file, why] of [
      [spin, /ends mid-varint/],
      [spin, /ends mid-varint/],
      [hugePage, /num_values=100000000; the limit is MODELQ_PARQUET_MAX_PAGE_VALUES/],
      [hugePage, /num_values=100000000; the limit is MODELQ_PARQUET_MAX_PAGE_VALUES/],
    ] as const) {
      const res = await fetch(`${p.url}/v1/batches?model=one`, {
        method: 'POST',
        body: Buffer.from(file),
        headers: { ...MALLORY, 'content-type': 'application/vnd.apache.parquet' },
      });
      expect(res.status).toBe(202);
      ids.push({ id: (await res.json()).id, why });
    }
    // Alice's requests, back to back, until every hostile batch has ended (and a few more after).
    const answers: number[] = [];
    const ended = new Map<string, { status: string; error?: string }>();
    while (ended.size < ids.length || answers.length < 20) {
      answers.push((await aliceInfer()).status);
      for (const { id } of ids) {
        if (ended.has(id)) continue;
        const v = await (await fetch(`${p.url}/v1/batches/${id}`, { headers: MALLORY })).json();
        if (['completed', 'failed', 'cancelled'].includes(v.status) && (v.status !== 'failed' || v.error)) ended.set(id, v);
      }
      if (answers.length > 2000) throw new Error(`the hostile batches did not end: ${JSON.stringify([...ended])}`);
    }
    expect(answers.filter((s) => s !== 200)).toEqual([]);
    for (const { id, why } of ids) {
      const v = ended.get(id)!;
      expect(v.status).toBe('failed');
      expect(v.error).toMatch(why);
    }
    expect(p.workers[0]!.child.exitCode).toBeNull();
    // Alice's batches are scored afterwards as well.
    const res = await fetch(`${p.url}/v1/batches?model=mine`, {
      method: 'POST',
      body: '{"input":[1,2,3,4]}\n{"input":[4,3,2,1]}\n',
      headers: { ...ALICE, 'content-type': 'application/x-ndjson' },
    });
    expect(res.status).toBe(202);
    const id = (await res.json()).id;
    const done = await until(async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`, { headers: ALICE })).json();
      return v.status === 'completed' ? v : null;
    }, "alice's batch to complete");
    expect(done.requestCounts).toMatchObject({ total: 2, completed: 2, failed: 0 });
  }, 120_000);
});

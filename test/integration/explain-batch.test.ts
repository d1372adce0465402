// Explained batches end to end: `explain=true` on a batch submit adds attributions, the base and the
// attributed class to every output line (JSONL, CSV columns, Parquet list columns), computed on the
// engine threads of a real worker; seeded by row number, so the same batch chunked otherwise gives
// the same attributions; submit-time refusals; under keys, the submit scope as any batch.
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearModel, mlpIgnoring } from '../fixtures/explain-models.ts';
import { rows } from '../fixtures/models.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'admin-key-0123456789': { tenant: 'acme', scopes: ['admin'] },
  'infer-key-0123456789': { tenant: 'acme', scopes: ['infer', 'submit', 'read'] },
  'read-key-01234567890': { tenant: 'acme', scopes: ['read'] },
};
const ADMIN = 'admin-key-0123456789';
const INFER = 'infer-key-0123456789';
const auth = (key: string, headers: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, ...headers });

const F = 5;
const W = [2, 0, -1, 0.5, 1];
const bg = rows(20, F, 9);
const N = 23;
const x = rows(N, F, 4);
const toRows = (a: Float32Array, w: number) => Array.from({ length: a.length / w }, (_, i) => Array.from(a.subarray(i * w, (i + 1) * w)));
const jsonl = toRows(x, F)
  .map((r, i) => JSON.stringify({ id: `r${i}`, features: r }))
  .join('\n');

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_ENGINE_THREADS: '2' } });
  for (const [name, bytes] of [
    ['mlp', mlpIgnoring(F, 12, 3, 1)],
    ['lin', linearModel(W)],
    ['bare', linearModel(W)],
  ] as const) {
    const up = await fetch(`${p.url}/v1/models/${name}/versions`, {
      method: 'POST',
      body: Buffer.from(bytes),
      headers: auth(ADMIN, { 'content-type': 'application/octet-stream' }),
    });
    expect(up.status).toBe(201);
    if (name === 'bare') continue;
    const put = await fetch(`${p.url}/v1/models/${name}/versions/1/background`, {
      method: 'PUT',
      body: JSON.stringify({ rows: toRows(bg, F) }),
      headers: auth(ADMIN, { 'content-type': 'application/json' }),
    });
    expect(put.status).toBe(200);
  }
});
afterAll(async () => {
  await p?.stop();
});

const submit = (query: string, body: string | Uint8Array = jsonl, type = 'application/x-ndjson', key = INFER) =>
  fetch(`${p.url}/v1/batches?${query}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : Buffer.from(body),
    headers: auth(key, { 'content-type': type }),
  });

async function run(query: string, body?: string | Uint8Array, type?: string): Promise<string> {
  const res = await submit(query, body, type);
  const accepted = await res.json();
  expect(res.status, JSON.stringify(accepted)).toBe(202);
  const done = await until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${accepted.id}`, { headers: auth(INFER) })).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    'batch to end',
    120_000,
  );
  expect(done).toMatchObject({ status: 'completed', requestCounts: { completed: N, failed: 0 } });
  return accepted.id as string;
}

const download = async (id: string, format = 'jsonl') => fetch(`${p.url}/v1/batches/${id}/output?format=${format}`, { headers: auth(INFER) });
const lines = async (id: string) =>
  (await (await download(id)).text())
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { row: number; id: string; outputs: Record<string, number[]> });

describe('explained batches', () => {
  it('adds attributions that sum to f(x) - base to every line; the ignored feature gets ~0; seeded by row number', async () => {
    const id = await run('model=mlp&explain=true&explainSamples=4&chunkRows=7');
    const out = await lines(id);
    expect(out).toHaveLength(N);
    out.forEach((o, i) => {
      expect(o.row).toBe(i);
      const a = o.outputs.attributions!;
      expect(a).toHaveLength(F);
      const c = o.outputs.explain_class![0]!;
      const probs = o.outputs.probabilities!;
      expect(c).toBe(probs.indexOf(Math.max(...probs)));
      expect(Math.abs(a.reduce((s, v) => s + v, 0) - (probs[c]! - o.outputs.explain_base![0]!))).toBeLessThan(1e-4);
      expect(Math.abs(a[1]!)).toBeLessThan(1e-6);
    });
    // The same rows, chunked otherwise (one chunk): the same attributions.
    const again = await lines(await run('model=mlp&explain=true&explainSamples=4'));
    expect(again.map((o) => o.outputs.attributions)).toEqual(out.map((o) => o.outputs.attributions));
    // Another seed: other permutations, other estimates (the additivity holds all the same).
    const seeded = await lines(await run('model=mlp&explain=true&explainSamples=4&explainSeed=5&chunkRows=7'));
    expect(seeded.map((o) => o.outputs.attributions)).not.toEqual(out.map((o) => o.outputs.attributions));
    // A fixed class, and the online answer for row 0 alone equals the batch's row 0 (same seed, same row key).
    const fixed = await lines(await run('model=mlp&explain=true&explainSamples=4&explainClass=2&chunkRows=7'));
    expect(fixed.every((o) => o.outputs.explain_class![0] === 2)).toBe(true);
    const online = await (
      await fetch(`${p.url}/v2/models/mlp/infer`, {
        method: 'POST',
        headers: auth(INFER, { 'content-type': 'application/json' }),
        body: JSON.stringify({
          parameters: { explain: true, explainSamples: 4 },
          inputs: [{ name: 'features', datatype: 'FP32', shape: [1, F], data: Array.from(x.subarray(0, F)) }],
        }),
      })
    ).json();
    const a0 = online.outputs.find((o: { name: string }) => o.name === 'attributions').data as number[];
    a0.forEach((v, k) => expect(v).toBeCloseTo(out[0]!.outputs.attributions![k]!, 6));
  });

  it('gives a linear model its exact Shapley values w_i (x_i - mean(background_i)), and CSV and Parquet outputs carry them as columns', async () => {
    const id = await run('model=lin&explain=true&explainSamples=2&chunkRows=10');
    const mean = Array.from({ length: F }, (_, i) => toRows(bg, F).reduce((s, r) => s + r[i]!, 0) / 20);
    const out = await lines(id);
    out.forEach((o, n) => o.outputs.attributions!.forEach((v, i) => expect(v).toBeCloseTo(W[i]! * (x[n * F + i]! - mean[i]!), 5)));
    const csv = (await (await download(id, 'csv')).text()).trim().split('\n');
    const header = csv[0]!.split(',');
    expect(header).toEqual(['row', 'id', 'prediction', ...Array.from({ length: F }, (_, i) => `attributions_${i}`), 'explain_base', 'explain_class']);
    const first = csv[1]!.split(',').map(Number);
    expect(first.slice(3, 3 + F)).toEqual(out[0]!.outputs.attributions);
    const pq = await parquetReadObjects({ file: await (await download(id, 'parquet')).arrayBuffer() });
    expect(pq).toHaveLength(N);
    pq.forEach((r, n) => {
      expect(Number(r.row)).toBe(n);
      (r.attributions as number[]).forEach((v, i) => expect(v).toBeCloseTo(out[n]!.outputs.attributions![i]!, 5));
    });
  });

  it('explains Parquet and CSV inputs too', async () => {
    const file = parquetWriteBuffer({
      columnData: Array.from({ length: F }, (_, i) => ({ name: `f${i}`, data: Array.from({ length: N }, (_, r) => x[r * F + i]!), type: 'FLOAT' as const })),
    });
    const fromPq = await lines(await run('model=lin&explain=true&explainSamples=2', new Uint8Array(file), 'application/vnd.apache.parquet'));
    const csvBody = [Array.from({ length: F }, (_, i) => `f${i}`).join(','), ...toRows(x, F).map((r) => r.join(','))].join('\n') + '\n';
    const fromCsv = await lines(await run('model=lin&explain=true&explainSamples=2&format=csv', csvBody, 'text/csv'));
    const fromJsonl = await lines(await run('model=lin&explain=true&explainSamples=2'));
    for (const other of [fromPq, fromCsv])
      other.forEach((o, n) => o.outputs.attributions!.forEach((v, i) => expect(v).toBeCloseTo(fromJsonl[n]!.outputs.attributions![i]!, 5)));
  });

  it('refuses, at submit, a model without background, bad settings and too costly rows; needs the submit scope', async () => {
    const none = await submit('model=bare&explain=true');
    expect(none.status).toBe(400);
    expect((await none.json()).error.message).toMatch(/no background rows.*PUT \/v1\/models\/bare\/versions\/1\/background/);
    const cls = await submit('model=mlp&explain=true&explainClass=3');
    expect(cls.status).toBe(400);
    expect((await cls.json()).error.message).toMatch(/explainClass 3 is out of range: output "probabilities" has 3 columns/);
    const samples = await submit('model=mlp&explain=true&explainSamples=1');
    expect(samples.status).toBe(400);
    expect((await samples.json()).error.message).toMatch(/explainSamples/);
    expect((await submit('model=mlp&explain=yes')).status).toBe(400);
    expect((await submit('model=mlp&explain=true', jsonl, 'application/x-ndjson', 'read-key-01234567890')).status).toBe(403);
  });
});

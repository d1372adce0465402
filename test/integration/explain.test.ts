// Attributions end to end: a model uploaded, its background set over HTTP, explained requests on
// /v2 answered by a real worker (the fast path hands them to the same inference function), with keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearModel, mlpIgnoring } from '../fixtures/explain-models.ts';
import { rows } from '../fixtures/models.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'admin-key-0123456789': { tenant: 'acme', scopes: ['admin'] },
  'infer-key-0123456789': { tenant: 'acme', scopes: ['infer'] },
  'read-key-01234567890': { tenant: 'acme', scopes: ['read'] },
};
const as = (key: string, init: RequestInit = {}): RequestInit => ({
  ...init,
  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(init.headers ?? {}) },
});
const F = 5;
const bg = rows(20, F, 9);
const x = rows(3, F, 4);
const toRows = (a: Float32Array, w: number) => Array.from({ length: a.length / w }, (_, i) => Array.from(a.subarray(i * w, (i + 1) * w)));

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS) } });
  for (const [name, bytes] of [
    ['mlp', mlpIgnoring(F, 12, 3, 1)],
    ['lin', linearModel([2, 0, -1, 0.5, 1])],
  ] as const) {
    const up = await fetch(
      `${p.url}/v1/models/${name}/versions`,
      as('admin-key-0123456789', { method: 'POST', body: Buffer.from(bytes), headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(up.status).toBe(201);
  }
});
afterAll(async () => {
  if (process.env.EXPLAIN_DEBUG) console.log(p.workers.flatMap((w) => w.lines).join('\n'));
  await p?.stop();
});

const infer = (name: string, parameters: Record<string, unknown>, key = 'infer-key-0123456789', data = x) =>
  fetch(
    `${p.url}/v2/models/${name}/infer`,
    as(key, {
      method: 'POST',
      body: JSON.stringify({ parameters, inputs: [{ name: 'features', datatype: 'FP32', shape: [data.length / F, F], data: Array.from(data) }] }),
    }),
  );

describe('explained inference', () => {
  it('refuses a version without background, then explains once one is set', async () => {
    const none = await infer('mlp', { explain: true });
    expect(none.status).toBe(400);
    expect((await none.json()).error).toMatch(/no background rows.*PUT \/v1\/models\/mlp\/versions\/1\/background/);
    const put = await fetch(
      `${p.url}/v1/models/mlp/versions/1/background`,
      as('admin-key-0123456789', { method: 'PUT', body: JSON.stringify({ rows: toRows(bg, F) }) }),
    );
    expect(put.status).toBe(200);
    expect((await put.json()).explain.background).toMatchObject({ rows: 20, features: F });
    const res = await infer('mlp', { explain: true, explainSamples: 6 });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    const probs = body.outputs.find((o: { name: string }) => o.name === 'probabilities');
    const attr = body.outputs.find((o: { name: string }) => o.name === 'attributions');
    expect(attr.shape).toEqual([3, F]);
    for (let n = 0; n < 3; n++) {
      const c = body.parameters.explain_class[n];
      const row: number[] = attr.data.slice(n * F, (n + 1) * F);
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - (probs.data[n * 3 + c] - body.parameters.explain_base[n]))).toBeLessThan(1e-4);
      expect(Math.abs(row[1]!)).toBeLessThan(1e-6); // the model ignores feature 1
    }
    // the same request, the same attributions
    const again = await (await infer('mlp', { explain: true, explainSamples: 6 })).json();
    expect(again.outputs.find((o: { name: string }) => o.name === 'attributions').data).toEqual(attr.data);
    // a fixed class
    const k = await (await infer('mlp', { explain: true, explainSamples: 2, explainClass: 2 })).json();
    expect(k.parameters.explain_class).toEqual([2, 2, 2]);
  });

  it('gives a linear model its exact Shapley values', async () => {
    await fetch(`${p.url}/v1/models/lin/versions/1/background`, as('admin-key-0123456789', { method: 'PUT', body: JSON.stringify({ rows: toRows(bg, F) }) }));
    const body = await (await infer('lin', { explain: true, explainSamples: 2 })).json();
    const attr = body.outputs.find((o: { name: string }) => o.name === 'attributions').data as number[];
    const w = [2, 0, -1, 0.5, 1];
    for (let n = 0; n < 3; n++)
      for (let i = 0; i < F; i++) {
        let mean = 0;
        for (let b = 0; b < 20; b++) mean += bg[b * F + i]!;
        expect(attr[n * F + i]!).toBeCloseTo(w[i]! * (x[n * F + i]! - mean / 20), 5);
      }
  });

  it('answers bad parameters and oversized work with 400s naming them', async () => {
    expect((await (await infer('mlp', { explain: 'yes' })).json()).error).toMatch(/parameters.explain must be true or false/);
    expect((await (await infer('mlp', { explain: true, explainSamples: 0 })).json()).error).toMatch(
      /parameters.explainSamples must be an integer between 2 and/,
    );
    const big = await infer('mlp', { explain: true, explainSamples: 1024 }, 'infer-key-0123456789', rows(400, F, 2));
    expect(big.status).toBe(400);
    expect((await big.json()).error).toMatch(/MODELQ_EXPLAIN_MAX_EVALS/);
    const cls = await infer('mlp', { explain: true, explainClass: 7 });
    expect(cls.status).toBe(400);
    expect((await cls.json()).error).toMatch(/explainClass 7 is out of range/);
    const bad = await fetch(
      `${p.url}/v1/models/mlp/versions/1/background`,
      as('admin-key-0123456789', { method: 'PUT', body: JSON.stringify({ rows: [[1, 2]] }) }),
    );
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/rows\[0\] has 2 values; the model takes 5 features/);
  });

  it('needs the infer scope to explain and admin to set a background', async () => {
    expect((await infer('mlp', { explain: true }, 'read-key-01234567890')).status).toBe(403);
    expect((await infer('mlp', { explain: true }, 'infer-key-0123456789')).status).toBe(200);
    const put = await fetch(
      `${p.url}/v1/models/mlp/versions/1/background`,
      as('infer-key-0123456789', { method: 'PUT', body: JSON.stringify({ rows: toRows(bg, F) }) }),
    );
    expect(put.status).toBe(403);
  });
});

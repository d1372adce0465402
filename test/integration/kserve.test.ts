// KServe V1 on the /v2 path: `:predict` with instances keyed by column answers the labels of a direct
// onnxruntime run fed by column, nulls, absent keys, "NaN" and unseen categories included; /v2 takes
// null as NaN for a column-input model; arrays feed a single-input model; `:explain` answers the
// explanation path's attributions; keys, scopes and tenants are those of /v2; errors name the field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mlpIgnoring } from '../fixtures/explain-models.ts';
import { buildColumnModel, directLabels, type ColumnRow } from '../fixtures/column-models.ts';
import { rows as seededRows } from '../fixtures/models.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'admin-key-0123456789': { tenant: 'acme', scopes: ['admin'] },
  'infer-key-0123456789': { tenant: 'acme', scopes: ['infer'] },
  'read-key-01234567890': { tenant: 'acme', scopes: ['read'] },
  'other-key-0123456789': { tenant: 'globex', scopes: ['infer'] },
};
const as = (key: string, init: RequestInit = {}): RequestInit => ({
  ...init,
  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(init.headers ?? {}) },
});
const F = 5;
const model = buildColumnModel();

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS) } });
  for (const [name, bytes] of [
    ['cols', model],
    ['mlp', mlpIgnoring(F, 12, 3, 1)],
  ] as const) {
    const up = await fetch(
      `${p.url}/v1/models/${name}/versions`,
      as('admin-key-0123456789', { method: 'POST', body: Buffer.from(bytes), headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(up.status).toBe(201);
  }
});
afterAll(async () => {
  await p?.stop();
});

const post = (path: string, body: unknown, key = 'infer-key-0123456789') =>
  fetch(`${p.url}${path}`, as(key, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) }));

/** A row of the source table as the direct run takes it (null: missing). */
const row = (age: number | null, income: number | null, plan: string | null, city: string | null): ColumnRow => ({
  id: '',
  age,
  income,
  plan,
  city,
  target: '',
});

describe('KServe V1 :predict', () => {
  it('answers a label and probabilities per instance, as a direct run fed by column; null, absent keys, "NaN" and unseen categories are valid', async () => {
    const instances = [
      { age: 30, income: 50, plan: 'pro', city: 'paris' },
      { age: null, income: null, plan: null, city: null },
      {},
      { age: 51, income: 12.5, plan: 'enterprise', city: 'brest', target: 'high' }, // unseen plan and city; the target is ignored
      { age: 'NaN', income: 80, plan: 'basic', city: 'nice' },
      { age: 62, plan: { b64: Buffer.from('max').toString('base64') }, city: 'lyon' },
    ];
    const want = await directLabels(model, [
      row(30, 50, 'pro', 'paris'),
      row(null, null, null, null),
      row(null, null, null, null),
      row(51, 12.5, 'enterprise', 'brest'),
      row(null, 80, 'basic', 'nice'),
      row(62, null, 'max', 'lyon'),
    ]);
    // Rows that differ only in missing or unseen values must still reach different classes, or the check proves little.
    expect(new Set(want).size).toBeGreaterThan(1);
    for (const path of ['/v1/models/cols:predict', '/v1/models/cols/versions/1:predict']) {
      const res = await post(path, { instances });
      const body = await res.json();
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(Object.keys(body)).toEqual(['predictions']);
      expect(body.predictions.map((x: { label: string }) => x.label)).toEqual(want);
      for (const x of body.predictions) {
        expect(x.probabilities).toHaveLength(3); // the upload lists no classes: a list
        expect(Math.abs(x.probabilities.reduce((a: number, b: number) => a + b, 0) - 1)).toBeLessThan(1e-5);
      }
    }
  });

  it('/v2 takes null elements of a column-input model as missing values (NaN, "")', async () => {
    const inputs = (age: unknown, city: unknown) => [
      { name: 'age', datatype: 'FP32', shape: [1, 1], data: [age] },
      { name: 'income', datatype: 'FP32', shape: [1, 1], data: [[null]] },
      { name: 'plan', datatype: 'BYTES', shape: [1, 1], data: [null] },
      { name: 'city', datatype: 'BYTES', shape: [1, 1], data: [city] },
    ];
    const res = await post('/v2/models/cols/infer', { inputs: inputs(null, null) });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.outputs.find((o: { name: string }) => o.name === 'label').data).toEqual(await directLabels(model, [row(null, null, null, null)]));
    // Still a 400 for what is not a number.
    const bad = await post('/v2/models/cols/infer', { inputs: inputs('old', 'paris') });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/"age"\.data\[0\] must be a finite number/);
  });

  it('feeds a single-input model from array instances, and explains them on the explanation path', async () => {
    const x = seededRows(2, F, 4);
    const instances = [Array.from(x.subarray(0, F)), Array.from(x.subarray(F))];
    const v2 = await (await post('/v2/models/mlp/infer', { inputs: [{ name: 'features', datatype: 'FP32', shape: [2, F], data: Array.from(x) }] })).json();
    const probs: number[] = v2.outputs.find((o: { name: string }) => o.name === 'probabilities').data;
    const pred = await post('/v1/models/mlp:predict', { instances });
    const body = await pred.json();
    expect(pred.status, JSON.stringify(body)).toBe(200);
    body.predictions.forEach((r: { probabilities: number[] }, i: number) => {
      r.probabilities.forEach((v, j) => expect(v).toBeCloseTo(probs[i * 3 + j]!, 6));
    });

    const bg = seededRows(20, F, 9);
    const put = await fetch(
      `${p.url}/v1/models/mlp/versions/1/background`,
      as('admin-key-0123456789', {
        method: 'PUT',
        body: JSON.stringify({ rows: Array.from({ length: 20 }, (_, i) => Array.from(bg.subarray(i * F, (i + 1) * F))) }),
      }),
    );
    expect(put.status).toBe(200);
    const ex = await post('/v1/models/mlp:explain', { instances, parameters: { explainSamples: 6 } });
    const e = await ex.json();
    expect(ex.status, JSON.stringify(e)).toBe(200);
    expect(e.parameters).toMatchObject({ explain_method: 'shapley', explain_samples: 6 });
    expect(e.explanations).toHaveLength(2);
    e.explanations.forEach((r: { attributions: number[]; base: number; class: number }, i: number) => {
      expect(r.attributions).toHaveLength(F);
      const sum = r.attributions.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - (e.predictions[i].probabilities[r.class] - r.base))).toBeLessThan(1e-4);
      expect(Math.abs(r.attributions[1]!)).toBeLessThan(1e-6); // the model ignores feature 1
    });
  });

  it('answers errors as { error: { code, message } } naming the field; keys, scopes and tenants as on /v2', async () => {
    const bad = async (path: string, body: unknown, status: number, code: string, message: RegExp, key?: string) => {
      const res = await post(path, body, key);
      expect(res.status).toBe(status);
      const b = await res.json();
      expect(b.error.code).toBe(code);
      expect(b.error.message).toMatch(message);
    };
    await bad('/v1/models/cols:predict', { instances: [] }, 400, 'bad_request', /^body\.instances: at least one instance is required/);
    await bad('/v1/models/cols:predict', { rows: [] }, 400, 'bad_request', /^body\.instances/);
    await bad('/v1/models/cols:predict', { instances: [{ age: 'old' }] }, 400, 'bad_request', /^instances\[0\]\.age must be a number or null, got "old"/);
    await bad('/v1/models/cols:predict', { instances: [{ city: [1, 2] }] }, 400, 'bad_request', /^instances\[0\]\.city must be a string or null/);
    await bad('/v1/models/cols:predict', { instances: [[1, 2, 3, 4]] }, 400, 'bad_request', /instances must be all objects/);
    await bad('/v1/models/mlp:predict', { instances: [{ features: 1 }] }, 400, 'bad_request', /send each instance as an array/);
    await bad(
      '/v1/models/mlp:predict',
      { instances: [[1, 2]] },
      400,
      'bad_request',
      /^instances\[0\] has 2 values at depth 1; input "features" \[-1,5\] takes 5/,
    );
    await bad('/v1/models/nope:predict', { instances: [{}] }, 404, 'not_found', /nope/);
    await bad('/v1/models/cols/versions/9:predict', { instances: [{}] }, 404, 'not_found', /9/);
    await bad('/v1/models/cols:predict', { instances: [{}] }, 403, 'forbidden', /infer/, 'read-key-01234567890');
    await bad('/v1/models/cols:predict', { instances: [{}] }, 404, 'not_found', /cols/, 'other-key-0123456789'); // another tenant's private model
    const anon = await fetch(`${p.url}/v1/models/cols:predict`, {
      method: 'POST',
      body: '{"instances":[{}]}',
      headers: { 'content-type': 'application/json' },
    });
    expect(anon.status).toBe(401);
  });
});

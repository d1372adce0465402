// Drift end to end: uploaded versions with a numeric and a categorical input, reference profiles from
// a dataset, online requests sampled (every one, here) into the versions' windows, and the reports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixedInputModel } from '../fixtures/explain-models.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'admin-key-0123456789': { tenant: 'acme', scopes: ['admin'] },
  'infer-key-0123456789': { tenant: 'acme', scopes: ['infer'] },
  'read-key-01234567890': { tenant: 'acme', scopes: ['read'] },
  'platform-key-01234567': { tenant: 'ops', scopes: ['platform'] },
};
const as = (key: string, init: RequestInit = {}): RequestInit => ({
  ...init,
  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(init.headers ?? {}) },
});
const ADMIN = 'admin-key-0123456789';

/** Seeded normal draws (Box-Muller) and colors with the given shares. */
function sampler(seed: number) {
  let s = seed;
  const u = () => ((s = (s * 1103515245 + 12345) % 2147483648) + 1) / 2147483649;
  return {
    normal: (mean: number, sd: number) => mean + sd * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()),
    color: (shares: [number, number, number]) => {
      const r = u();
      return r < shares[0] ? 'red' : r < shares[0] + shares[1] ? 'blue' : 'green';
    },
  };
}
const MEANS = [0, 5, -3];
const SDS = [1, 2, 0.5];
const TRAIN_COLORS: [number, number, number] = [0.5, 0.3, 0.2];

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_DRIFT_SAMPLE: '1', MODELQ_DRIFT_WINDOW: '100000' } });
  const g = sampler(1);
  const lines = ['a,b,c,color'];
  for (let i = 0; i < 5000; i++) lines.push(`${[0, 1, 2].map((k) => g.normal(MEANS[k]!, SDS[k]!).toFixed(5)).join(',')},${g.color(TRAIN_COLORS)}`);
  const ds = await fetch(
    `${p.url}/v1/datasets?format=csv&name=ref`,
    as(ADMIN, { method: 'POST', body: lines.join('\n') + '\n', headers: { 'content-type': 'text/csv' } }),
  );
  expect(ds.status).toBe(201);
  const { id } = await ds.json();
  for (const name of ['same', 'shifted', 'recolored']) {
    const up = await fetch(
      `${p.url}/v1/models/${name}/versions`,
      as(ADMIN, { method: 'POST', body: Buffer.from(mixedInputModel()), headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(up.status).toBe(201);
    const ref = await fetch(
      `${p.url}/v1/models/${name}/versions/1/reference`,
      as(ADMIN, { method: 'PUT', body: JSON.stringify({ dataset: id, columns: ['a', 'b', 'c', 'color'] }) }),
    );
    const body = await ref.json();
    expect(ref.status, JSON.stringify(body)).toBe(200);
    expect(body.explain.reference).toMatchObject({ rows: 5000, features: 4 });
  }
});
afterAll(async () => {
  await p?.stop();
});

/** Sends `requests` requests of 100 rows, feature `shift` moved by `by` sd, colors with `colors` shares. */
async function traffic(name: string, seed: number, o: { shift?: number; by?: number; colors?: [number, number, number] } = {}) {
  const g = sampler(seed);
  for (let r = 0; r < 20; r++) {
    const x: number[] = [];
    const c: string[] = [];
    for (let i = 0; i < 100; i++) {
      for (let k = 0; k < 3; k++) x.push(g.normal(MEANS[k]! + (k === o.shift ? (o.by ?? 0) * SDS[k]! : 0), SDS[k]!));
      c.push(g.color(o.colors ?? TRAIN_COLORS));
    }
    const res = await fetch(
      `${p.url}/v2/models/${name}/infer`,
      as('infer-key-0123456789', {
        method: 'POST',
        body: JSON.stringify({
          inputs: [
            { name: 'features', datatype: 'FP32', shape: [100, 3], data: x },
            { name: 'color', datatype: 'BYTES', shape: [100, 1], data: c },
          ],
        }),
      }),
    );
    expect(res.status).toBe(200);
  }
}

const drift = async (name: string, key = 'read-key-01234567890') => (await fetch(`${p.url}/v1/models/${name}/versions/1/drift`, as(key))).json();
const levels = (d: { features: { name: string; level: string }[] }) => Object.fromEntries(d.features.map((f) => [f.name, f.level]));
const settled = (name: string) =>
  until(async () => {
    const d = await drift(name);
    return d.rows >= 2000 ? d : null;
  }, `${name}'s window to hold 2000 rows`);

describe('drift', () => {
  it('reports no data before traffic, and needs read (not infer) under keys', async () => {
    const d = await drift('same');
    expect(d).toMatchObject({ rows: 0, level: 'no_data' });
    const refused = await fetch(`${p.url}/v1/models/same/versions/1/drift`, as('infer-key-0123456789'));
    expect(refused.status).toBe(403);
  });

  it('keeps every feature ok for inputs from the training distribution', async () => {
    await traffic('same', 7);
    const d = await settled('same');
    expect(levels(d)).toEqual({ a: 'ok', b: 'ok', c: 'ok', color: 'ok' });
    expect(d.features.map((f: { metric: string }) => f.metric)).toEqual(['psi', 'psi', 'psi', 'js']);
  });

  it('flags a feature shifted by 2 sd as alert, and only it', async () => {
    await traffic('shifted', 8, { shift: 1, by: 2 });
    const d = await settled('shifted');
    expect(levels(d)).toEqual({ a: 'ok', b: 'alert', c: 'ok', color: 'ok' });
    expect(d.level).toBe('alert');
    // /metrics (platform scope: the admin key of a tenant is not enough) exports the same figures
    const metrics = await (await fetch(`${p.url}/metrics`, as('platform-key-01234567'))).text();
    const b = d.features.find((f: { name: string }) => f.name === 'b');
    const line = metrics.split('\n').find((l) => l.startsWith('modelq_drift_score{model="shifted",version="1",feature="b",metric="psi"}'));
    expect(Number(line?.split(' ')[1])).toBeCloseTo(b.score, 6);
    expect(metrics).toContain('modelq_drift_level{model="shifted",version="1",feature="b",metric="psi"} 2');
    expect(metrics).toContain('modelq_drift_level{model="shifted",version="1",feature="a",metric="psi"} 0');
  });

  it('flags a categorical column whose frequencies changed', async () => {
    await traffic('recolored', 9, { colors: [0.1, 0.2, 0.7] });
    const d = await settled('recolored');
    expect(levels(d)).toEqual({ a: 'ok', b: 'ok', c: 'ok', color: 'alert' });
  });

  it('answers a version without reference and bad reference bodies clearly', async () => {
    await fetch(
      `${p.url}/v1/models/bare/versions`,
      as(ADMIN, { method: 'POST', body: Buffer.from(mixedInputModel()), headers: { 'content-type': 'application/octet-stream' } }),
    );
    const none = await fetch(`${p.url}/v1/models/bare/versions/1/drift`, as(ADMIN));
    expect(none.status).toBe(409);
    expect((await none.json()).error.message).toMatch(/no reference profile/);
    const both = await fetch(
      `${p.url}/v1/models/bare/versions/1/reference`,
      as(ADMIN, { method: 'PUT', body: JSON.stringify({ rows: [[1, 2, 3, 'red']], dataset: 'x' }) }),
    );
    expect(both.status).toBe(400);
    const short = await fetch(`${p.url}/v1/models/bare/versions/1/reference`, as(ADMIN, { method: 'PUT', body: JSON.stringify({ rows: [[1, 2, 'red']] }) }));
    expect((await short.json()).error.message).toMatch(/rows\[0\] has 3 values; the model's inputs have 4 features/);
    const inline = await fetch(
      `${p.url}/v1/models/bare/versions/1/reference`,
      as(ADMIN, {
        method: 'PUT',
        body: JSON.stringify({
          rows: [
            [1, 2, 3, 'red'],
            [2, 3, 4, 'blue'],
          ],
        }),
      }),
    );
    expect(inline.status).toBe(200);
  });
});

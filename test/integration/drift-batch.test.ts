// Drift of batch inputs and references from served rows: uploaded versions without a reference get
// one from their first N scored rows (a batch's, or online requests'); later batches are drawn into
// the versions' windows on the engine threads; a shifted numeric column and changed category shares
// are flagged, the others stay ok.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mixedInputModel } from '../fixtures/explain-models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const N = 1000;
const MEANS = [0, 5, -3];
const SDS = [1, 2, 0.5];
const COLORS: [number, number, number] = [0.5, 0.3, 0.2];

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

type Shift = { shift?: number; by?: number; colors?: [number, number, number] };
function draw(n: number, seed: number, o: Shift = {}): { x: number[][]; c: string[] } {
  const g = sampler(seed);
  const x: number[][] = [];
  const c: string[] = [];
  for (let i = 0; i < n; i++) {
    x.push([0, 1, 2].map((k) => g.normal(MEANS[k]! + (k === o.shift ? (o.by ?? 0) * SDS[k]! : 0), SDS[k]!)));
    c.push(g.color(o.colors ?? COLORS));
  }
  return { x, c };
}

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({
    workers: 1,
    env: { MODELQ_DRIFT_SAMPLE: '1', MODELQ_DRIFT_WINDOW: '100000', MODELQ_DRIFT_REFERENCE_ROWS: String(N), MODELQ_ENGINE_THREADS: '2' },
  });
  for (const name of ['same', 'shifted', 'recolored', 'online']) expect((await uploadModel(p.url, name, mixedInputModel())).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

async function batch(name: string, n: number, seed: number, o: Shift = {}) {
  const { x, c } = draw(n, seed, o);
  const body = x.map((r, i) => JSON.stringify({ features: r, color: [c[i]] })).join('\n');
  const res = await fetch(`${p.url}/v1/batches?model=${name}&chunkRows=700`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
  const accepted = await res.json();
  expect(res.status, JSON.stringify(accepted)).toBe(202);
  const done = await until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${accepted.id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    'batch to end',
    120_000,
  );
  expect(done).toMatchObject({ status: 'completed', requestCounts: { completed: n } });
}

const drift = async (name: string) => {
  const res = await fetch(`${p.url}/v1/models/${name}/versions/1/drift`);
  return { status: res.status, body: await res.json() };
};
const levels = (d: { features: { name: string; level: string }[] }) => Object.fromEntries(d.features.map((f) => [f.name, f.level]));
const ALL_OK = { 'features[0]': 'ok', 'features[1]': 'ok', 'features[2]': 'ok', color: 'ok' };

describe('drift of batches, references from served rows', () => {
  it("builds an uploaded version's reference from its first N batch rows, then counts later batches into its window", async () => {
    expect((await drift('same')).status).toBe(409); // no reference yet
    for (const name of ['same', 'shifted', 'recolored']) await batch(name, 2 * N, 1);
    for (const name of ['same', 'shifted', 'recolored']) {
      const v = await (await fetch(`${p.url}/v1/models/${name}/versions/1`)).json();
      expect(v.explain?.reference).toMatchObject({ rows: N, features: 4 });
    }
    await batch('same', 3000, 2);
    const d = await drift('same');
    expect(d.status).toBe(200);
    expect(d.body.referenceRows).toBe(N);
    expect(d.body.rows).toBeGreaterThan(1500); // every row drawn (share 1), up to the threads' bound per segment
    expect(d.body.rows).toBeLessThanOrEqual(3000 + N); // plus first-batch rows scored after the reference was built
    expect(levels(d.body)).toEqual(ALL_OK);
  });

  it('flags a batch column shifted by 2 sd, and only it; and changed category shares', async () => {
    await batch('shifted', 3000, 3, { shift: 1, by: 2 });
    expect(levels((await drift('shifted')).body)).toEqual({ ...ALL_OK, 'features[1]': 'alert' });
    await batch('recolored', 3000, 4, { colors: [0.1, 0.2, 0.7] });
    expect(levels((await drift('recolored')).body)).toEqual({ ...ALL_OK, color: 'alert' });
  });

  it('builds a reference from the first N rows of online requests too', async () => {
    const { x, c } = draw(N + 200, 5);
    for (let at = 0; at < x.length; at += 200) {
      const res = await fetch(`${p.url}/v2/models/online/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: [
            { name: 'features', datatype: 'FP32', shape: [200, 3], data: x.slice(at, at + 200).flat() },
            { name: 'color', datatype: 'BYTES', shape: [200, 1], data: c.slice(at, at + 200) },
          ],
        }),
      });
      expect(res.status).toBe(200);
    }
    const v = await until(async () => {
      const r = await (await fetch(`${p.url}/v1/models/online/versions/1`)).json();
      return r.explain?.reference ? r : null;
    }, 'the online reference');
    expect(v.explain.reference).toMatchObject({ rows: N, features: 4 });
  });
});

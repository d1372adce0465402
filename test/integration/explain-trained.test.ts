// A version trained on the platform carries its background (seeded training rows) and its drift
// reference: it can be explained and watched without any further setup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let version: { name: string; version: number; explain: { background: { rows: number; features: number }; reference: { rows: number; features: number } } };
const rand = (seed: number) => {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
};

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_DRIFT_SAMPLE: '1' } });
  const r = rand(3);
  const lines = ['x1,x2,x3,label'];
  for (let i = 0; i < 400; i++) {
    const [a, b, c] = [r(), r(), r()];
    lines.push(`${a.toFixed(5)},${b.toFixed(5)},${c.toFixed(5)},${a + b < 0 ? 'low' : 'high'}`);
  }
  const ds = await (
    await fetch(`${p.url}/v1/datasets?format=csv&name=t`, { method: 'POST', body: lines.join('\n') + '\n', headers: { 'content-type': 'text/csv' } })
  ).json();
  const job = await (
    await postJson(`${p.url}/v1/jobs/train`, {
      dataset: ds.id,
      target: 'label',
      features: ['x1', 'x2', 'x3'],
      model: { type: 'mlp' },
      epochs: 5,
      seed: 1,
      registerAs: 'trained',
      explainBackground: 30,
    })
  ).json();
  const done = await until(
    async () => {
      const j = await (await fetch(`${p.url}/v1/jobs/${job.id}`)).json();
      return j.state === 'completed' || j.state === 'failed' ? j : null;
    },
    'training',
    120_000,
  );
  expect(done.state, JSON.stringify(done.error)).toBe('completed');
  version = await (await fetch(`${p.url}/v1/models/trained/versions/1`)).json();
}, 150_000);
afterAll(async () => {
  await p?.stop();
});

describe('a trained version', () => {
  it('has a background of explainBackground training rows and a reference of the training split', () => {
    expect(version.explain.background).toMatchObject({ rows: 30, features: 3 });
    expect(version.explain.reference).toMatchObject({ features: 3 });
    expect(version.explain.reference.rows).toBeGreaterThan(300);
  });

  it('is explained with attributions that add up to its probability minus the base', async () => {
    // Two rows, one input per source column, as the trained model takes them; one player per column.
    const cols = { x1: [0.5, -0.6], x2: [0.4, -0.1], x3: [-0.2, 0.9] };
    const res = await postJson(`${p.url}/v2/models/trained/infer`, {
      parameters: { explain: true, explainSamples: 4 },
      inputs: Object.entries(cols).map(([name, data]) => ({ name, datatype: 'FP32', shape: [2, 1], data })),
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    const probs = body.outputs.find((o: { name: string }) => o.name === 'probabilities').data as number[];
    const attr = body.outputs.find((o: { name: string }) => o.name === 'attributions').data as number[];
    expect(body.parameters.explain_output).toBe('probabilities');
    expect(body.parameters.explain_columns).toEqual(['x1', 'x2', 'x3']);
    for (let n = 0; n < 2; n++) {
      const c = body.parameters.explain_class[n];
      expect(Math.abs(attr.slice(n * 3, n * 3 + 3).reduce((a, b) => a + b, 0) - (probs[n * 2 + c]! - body.parameters.explain_base[n]))).toBeLessThan(1e-4);
    }
  });

  it('reports drift per named feature against its training split', async () => {
    const r = rand(11);
    const x = Array.from({ length: 600 }, () => r());
    // By column, as the trained model's inputs are.
    const inputs = ['x1', 'x2', 'x3'].map((name, j) => ({ name, datatype: 'FP32', shape: [200, 1], data: x.filter((_, i) => i % 3 === j) }));
    expect((await postJson(`${p.url}/v2/models/trained/infer`, { inputs })).status).toBe(200);
    const d = await until(async () => {
      const j = await (await fetch(`${p.url}/v1/models/trained/versions/1/drift`)).json();
      return j.rows >= 200 ? j : null;
    }, 'drift rows');
    expect(d.features.map((f: { name: string }) => f.name)).toEqual(['x1', 'x2', 'x3']);
    expect(d.features.every((f: { level: string }) => f.level !== 'alert')).toBe(true);
  });
});

// A text model trained on the platform (numeric, category and text features) keeps a drift reference
// of its training split: quantile bins for the number, category shares for the colour and word shares
// for the text, slotted as its inputs are; traffic like the training rows stays `ok`, text from another
// vocabulary makes the text feature `alert` and leaves the others `ok`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const TOPICS = [
  ['fast', 'editor', 'vim'],
  ['mail', 'server', 'smtp'],
  ['chess', 'game', 'puzzle'],
];
const FILLER = ['with', 'plugins', 'for', 'the', 'desktop', 'and', 'terminal', 'small', 'free', 'tool'];
const OTHER = ['quantum', 'photon', 'laser', 'optics', 'telescope', 'orbit', 'nebula', 'galaxy'];
const COLORS = ['red', 'green', 'blue', 'override'];

/** Seeded rows: a number in (-1, 1), a colour, a note (a topic word and three filler words, or words of `vocabulary`) and the class. */
function rows(seed: number, n: number, vocabulary?: string[]) {
  let s = seed;
  const u = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  return Array.from({ length: n }, () => {
    const t = Math.floor(u() * 3);
    const x = u() * 2 - 1;
    const color = COLORS[Math.floor(u() * 4)]!;
    const pick = (w: string[]) => w[Math.floor(u() * w.length)]!;
    const note = vocabulary ? Array.from({ length: 4 }, () => pick(vocabulary)) : [pick(TOPICS[t]!), pick(FILLER), pick(FILLER), pick(FILLER)];
    return { x, color, note: note.join(' '), klass: [10, 20, 30][color === 'override' ? (x > 0 ? 2 : 0) : t]! };
  });
}

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_DRIFT_SAMPLE: '1', MODELQ_DRIFT_WINDOW: '100000' } });
  const lines = ['x,color,note,klass', ...rows(1, 600).map((r) => `${r.x.toFixed(4)},${r.color},"${r.note}",${r.klass}`)];
  const up = await fetch(`${p.url}/v1/datasets?format=csv&name=notes`, {
    method: 'POST',
    body: lines.join('\n') + '\n',
    headers: { 'content-type': 'text/csv' },
  });
  const ds = await up.json();
  expect(up.status, JSON.stringify(ds)).toBe(201);
  for (const name of ['kept', 'moved']) {
    const res = await postJson(`${p.url}/v1/jobs/train`, { dataset: ds.id, target: 'klass', epochs: 5, minDf: 1, seed: 1, registerAs: name });
    const job = await res.json();
    expect(res.status, JSON.stringify(job)).toBe(202);
    const done = await until(
      async () => {
        const j = await (await fetch(`${p.url}/v1/jobs/${job.id}`)).json();
        return ['completed', 'failed'].includes(j.state) ? j : null;
      },
      `training ${name}`,
      240_000,
    );
    expect(done.state, JSON.stringify(done.error)).toBe('completed');
    expect(done.spec.hyperparameters.featureTypes).toEqual({ x: 'numeric', color: 'category', note: 'text' });
  }
}, 300_000);
afterAll(async () => {
  await p?.stop();
});

async function traffic(name: string, seed: number, vocabulary?: string[]) {
  for (let i = 0; i < 10; i++) {
    const batch = rows(seed + i, 100, vocabulary);
    const res = await postJson(`${p.url}/v2/models/${name}/infer`, {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [100, 1], data: batch.map((r) => r.x) },
        { name: 'color', datatype: 'BYTES', shape: [100, 1], data: batch.map((r) => r.color) },
        { name: 'note', datatype: 'BYTES', shape: [100, 1], data: batch.map((r) => r.note) },
      ],
    });
    expect(res.status).toBe(200);
  }
}
type Report = { rows: number; features: { name: string; kind: string; metric: string; level: string; score: number }[] };
const report = (name: string) =>
  until(async () => {
    const d = (await (await fetch(`${p.url}/v1/models/${name}/versions/1/drift`)).json()) as Report;
    return d.rows >= 1000 ? d : null;
  }, `${name}'s window`);
const levels = (d: Report) => Object.fromEntries(d.features.map((f) => [f.name, f.level]));

describe('drift of a trained text model', () => {
  it('has a reference of the training split right after training, one slot per input column', async () => {
    const v = await (await fetch(`${p.url}/v1/models/kept/versions/1`)).json();
    expect(v.explain.reference).toMatchObject({ features: 3 });
    expect(v.explain.reference.rows).toBeGreaterThan(400); // the training split of 600 rows
    // The explanation background: sampled training rows by source column, as the model's inputs take them.
    expect(v.explain.background).toMatchObject({ features: 3 });
    const d = (await (await fetch(`${p.url}/v1/models/kept/versions/1/drift`)).json()) as Report;
    expect(d).toMatchObject({ rows: 0, level: 'no_data' });
    expect(d.features.map((f) => [f.name, f.kind, f.metric])).toEqual([
      ['x', 'numeric', 'psi'],
      ['color', 'categorical', 'js'],
      ['note', 'text', 'js'],
    ]);
  });

  it('keeps every feature ok for rows like the training rows, and flags text from another vocabulary', async () => {
    await traffic('kept', 100);
    await traffic('moved', 200, OTHER);
    expect(levels(await report('kept'))).toEqual({ x: 'ok', color: 'ok', note: 'ok' });
    const moved = await report('moved');
    expect(levels(moved)).toEqual({ x: 'ok', color: 'ok', note: 'alert' });
    expect(moved.features[2]!.score).toBeGreaterThan(0.5);
  });
});

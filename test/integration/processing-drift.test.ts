// Drift of a model with declared processing, watched on summaries of the tensors its processing
// gives (per-channel mean and std of the CNN's normalised input) and of its outputs (the logits, the
// label): the version's reference is built from its first N files served online, and later files,
// online and in a ZIP batch, fill its window. The reference's features and the report's scores are
// compared with the same summaries, quantile bins, PSI and Jensen-Shannon distances computed here from
// the files decoded by the test's own reference code and run in onnxruntime directly.
import { zipSync } from 'fflate';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLASSIFIER_PROCESSING, CLASSIFIER_REF, draw, reference, type Drawing } from '../fixtures/images.ts';
import { convNet, directRun } from '../fixtures/models.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const cnn = convNet(11);
const C = CLASSIFIER_REF.crop;
const N = 4;
const PROCESSING = { ...CLASSIFIER_PROCESSING, labels: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'] };

const picture = (bg: [number, number, number], x: number, colour: string): Drawing => ({
  width: 30 + x,
  height: 26,
  background: bg,
  circle: [10 + x, 12, 7, colour],
});
const FIRST: Drawing[] = [
  picture([20, 40, 200], 0, '#ff2020'),
  picture([240, 240, 30], 3, '#10a010'),
  picture([90, 90, 90], 5, '#ffffff'),
  picture([200, 60, 60], 2, '#000080'),
];
const LATER: Drawing[] = [picture([250, 250, 250], 1, '#202020'), picture([10, 10, 10], 4, '#f0f000'), picture([30, 200, 30], 6, '#ff00ff')];
const ZIPPED: Drawing[] = [picture([240, 20, 240], 2, '#00ffff'), picture([128, 0, 255], 7, '#ffff00'), picture([255, 128, 0], 3, '#0000ff')];

let p: TestPlatform;
const api = (path: string, init?: RequestInit) => fetch(`${p.url}${path}`, init);

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_DRIFT_REFERENCE_ROWS: String(N), MODELQ_DRIFT_SAMPLE: '1' } });
  const up = await api('/v1/models/cnn/versions', {
    method: 'POST',
    body: Buffer.from(cnn),
    headers: { 'content-type': 'application/octet-stream', 'modelq-processing': JSON.stringify(PROCESSING) },
  });
  expect(up.status).toBe(201);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

/** One row of features per file, as the test computes them: mean[3], std[3], logits[10], label. */
async function summaries(files: Buffer[]): Promise<(number | string)[][]> {
  const rows: (number | string)[][] = [];
  for (const f of files) {
    const x = await reference(f, CLASSIFIER_REF);
    const mean: number[] = [];
    const std: number[] = [];
    for (let c = 0; c < 3; c++) {
      const v = Array.from(x.subarray(c * C * C, (c + 1) * C * C));
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      mean.push(m);
      std.push(Math.sqrt(Math.max(0, v.reduce((a, b) => a + b * b, 0) / v.length - m * m)));
    }
    const logits = Array.from((await directRun(cnn, { image: { data: x, dims: [1, 3, C, C] } })).logits!);
    const best = logits.indexOf(Math.max(...logits));
    rows.push([...mean, ...std, ...logits, PROCESSING.labels[best]!]);
  }
  return rows;
}

const NAMES = [
  ...[0, 1, 2].map((c) => `image.mean[${c}]`),
  ...[0, 1, 2].map((c) => `image.std[${c}]`),
  ...Array.from({ length: 10 }, (_, k) => `logits[${k}]`),
  'label',
];

/** The report's score of each feature, computed here: deciles of the reference values (PSI) and category shares (JS). */
function expectedScores(ref: (number | string)[][], later: (number | string)[][]): number[] {
  return NAMES.map((_, k) => {
    const e = ref.map((r) => r[k]!);
    const a = later.map((r) => r[k]!);
    if (typeof e[0] === 'string') {
      const freq = new Map<string, number>();
      for (const x of e) freq.set(String(x), (freq.get(String(x)) ?? 0) + 1);
      const cats = [...freq.entries()].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).map(([c]) => c);
      const share = (v: (number | string)[]) => [
        ...cats.map((c) => v.filter((x) => x === c).length / v.length),
        v.filter((x) => !cats.includes(String(x))).length / v.length,
      ];
      const [P, Q] = [share(e), share(a)];
      let d = 0;
      P.forEach((pi, i) => {
        const m = (pi + Q[i]!) / 2;
        if (pi > 0) d += 0.5 * pi * Math.log2(pi / m);
        if (Q[i]! > 0) d += 0.5 * Q[i]! * Math.log2(Q[i]! / m);
      });
      return Math.sqrt(d);
    }
    const sorted = (e as number[]).slice().sort((x, y) => x - y);
    const edges: number[] = [];
    for (let q = 1; q < 10; q++) {
      const v = sorted[Math.min(sorted.length - 1, Math.floor((q * sorted.length) / 10))]!;
      if (!edges.length || v > edges[edges.length - 1]!) edges.push(v);
    }
    const bin = (x: number) => edges.filter((edge) => x >= edge).length;
    const shares = (v: number[]) => Array.from({ length: edges.length + 1 }, (_, b) => v.filter((x) => bin(x) === b).length / v.length);
    const [E, A] = [shares(e as number[]), shares(a as number[])];
    return E.reduce((s, e0, i) => {
      const [ee, aa] = [Math.max(e0, 1e-4), Math.max(A[i]!, 1e-4)];
      return s + (aa - ee) * Math.log(aa / ee);
    }, 0);
  });
}

type Report = { rows: number; features: { name: string; kind: string; metric: string; score: number | null }[] };

it('the first N files served make the reference (summaries of the processed input and of the outputs); later files online and in a ZIP batch fill the window, scored as computed here', async () => {
  const predict = (files: Buffer[]) =>
    api('/v1/models/cnn:predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: files.map((f) => ({ b64: f.toString('base64') })) }),
    });
  const first = await Promise.all(FIRST.map((d, i) => draw(d, i % 2 ? 'jpeg' : 'png')));
  // Two requests of two files, one after the other: the reference's first N rows.
  expect((await predict(first.slice(0, 2))).status).toBe(200);
  expect((await predict(first.slice(2, 4))).status).toBe(200);
  const v = await until(async () => {
    const r = (await (await api('/v1/models/cnn/versions/1')).json()) as { explain?: { reference?: { rows: number; features: number } } };
    return r.explain?.reference;
  }, 'the reference built from the first rows');
  expect(v).toMatchObject({ rows: N, features: NAMES.length });

  const empty = (await (await api('/v1/models/cnn/versions/1/drift')).json()) as Report;
  expect(empty.rows).toBe(0);
  expect(empty.features.map((f) => f.name)).toEqual(NAMES);
  expect(empty.features.map((f) => f.kind)).toEqual([...NAMES.slice(0, -1).map(() => 'numeric'), 'categorical']);

  const later = await Promise.all(LATER.map((d) => draw(d, 'png')));
  expect((await predict(later)).status).toBe(200);
  const zipped = await Promise.all(ZIPPED.map((d) => draw(d, 'jpeg')));
  const zip = zipSync(Object.fromEntries(zipped.map((f, i) => [`z${i}.jpg`, new Uint8Array(f)])));
  const batch = await api('/v1/batches?model=cnn', { method: 'POST', body: Buffer.from(zip), headers: { 'content-type': 'application/zip' } });
  expect(batch.status).toBe(202);
  const report = await until(
    async () => {
      const r = (await (await api('/v1/models/cnn/versions/1/drift')).json()) as Report;
      return r.rows === LATER.length + ZIPPED.length ? r : undefined;
    },
    'the window of the later files',
    30_000,
  );
  const want = expectedScores(await summaries(first), await summaries([...later, ...zipped]));
  report.features.forEach((f, k) => expect(Math.abs(f.score! - want[k]!)).toBeLessThan(1e-6));
  // Pictures unlike the first ones: their input summaries drifted.
  expect(Math.max(...report.features.slice(0, 6).map((f) => f.score!))).toBeGreaterThan(0.25);
});

it('PUT .../reference takes rows of those summaries in the report order; a row of the wrong width is a 400 naming the count', async () => {
  const bad = await api('/v1/models/cnn/versions/1/reference', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ rows: [[1, 2, 3]] }),
  });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(
    new RegExp(`has 3 values; the model's inputs have ${NAMES.length} features`),
  );
  const rows = await summaries(await Promise.all(LATER.map((d) => draw(d, 'png'))));
  const put = await api('/v1/models/cnn/versions/1/reference', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ rows }),
  });
  expect(put.status).toBe(200);
  expect(((await put.json()) as { explain: { reference: { rows: number; features: number } } }).explain.reference).toMatchObject({
    rows: 3,
    features: NAMES.length,
  });
});

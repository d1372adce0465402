// What comes after training keeps working on a column-input model (one input per source column,
// imputation, one-hot and TF-IDF inside the graph): int8, fp16 and structured pruning register
// versions with the same per-column inputs that agree with their parent on the dataset fed by column
// (the job's verdict, recomputed here with onnxruntime); a distilled student keeps the front end;
// drift reports one feature per source column, named as it, after rows with gaps are scored by
// column. A model of the older form (one FP32 `features` input) still compresses, scores and explains.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.ts';
import { buildDashboard } from '../../dashboard/app.ts';
import { exportMlp } from '../../workers/onnx/export-mlp.ts';
import { rng } from '../../workers/onnx/builder.ts';
import { columnFeeds } from '../helpers/column-feeds.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const POSITIVE = ['great', 'excellent', 'love', 'perfect'];
const NEGATIVE = ['bad', 'broken', 'awful', 'refund'];
const FILLER = ['the', 'item', 'arrived', 'today', 'box', 'color', 'size', 'fits'];
const COLUMNS = ['age', 'income', 'color', 'review'];

interface Row {
  age: number | null;
  income: number | null;
  color: string | null;
  review: string;
  label: 'yes' | 'no';
}

/** Seeded rows with gaps in both numbers and the category, and a text column; a known rule over all of them. */
function rows(n: number, seed: number): Row[] {
  let s = seed;
  const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  return Array.from({ length: n }, () => {
    const age = 20 + Math.round(r() * 50);
    const income = Math.round(20_000 + r() * 80_000);
    const color = pick(['red', 'green', 'blue']);
    const positive = r() < 0.5;
    const review = [pick(FILLER), pick(positive ? POSITIVE : NEGATIVE), pick(FILLER), pick(FILLER)].join(' ');
    const score = (age > 45 ? 1 : 0) + (color === 'red' ? 1 : 0) + (positive ? 1 : 0) + (income > 60_000 ? 1 : 0);
    return {
      age: r() < 0.12 ? null : age,
      income: r() < 0.15 ? null : income,
      color: r() < 0.1 ? null : color,
      review,
      label: score >= 2 ? 'yes' : 'no',
    };
  });
}
const toCsv = (rs: Row[]) =>
  ['age,income,color,review,label', ...rs.map((x) => [x.age ?? '', x.income ?? '', x.color ?? '', x.review, x.label].join(','))].join('\n') + '\n';
const feedsOf = (rs: Row[]) =>
  columnFeeds(
    { age: rs.map((x) => x.age), income: rs.map((x) => x.income), color: rs.map((x) => x.color), review: rs.map((x) => x.review) },
    new Set(['age', 'income']),
  );

let p: TestPlatform;
let data: Row[];
let ds: string;

const finished = (id: string, timeout = 240_000) =>
  until(
    async () => {
      const j = await (await fetch(`${p.url}/v1/jobs/${id}`)).json();
      return ['completed', 'failed'].includes(j.state) ? j : null;
    },
    `job ${id} to finish`,
    timeout,
  );
async function submit(path: string, body: object) {
  // Speed is not what this test is about: a small model's compressed form may be as fast as its parent within noise.
  const res = await postJson(`${p.url}${path}`, path === '/v1/jobs/compress' ? { allowSlower: true, ...body } : body);
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(202);
  return finished(json.id);
}
const download = async (name: string, v = 1) => new Uint8Array(await (await fetch(`${p.url}/v1/models/${name}/versions/${v}/onnx`)).arrayBuffer());
const version = async (name: string, v = 1) => (await fetch(`${p.url}/v1/models/${name}/versions/${v}`)).json();
const labelsOf = async (bytes: Uint8Array, rs: Row[]) =>
  Array.from((await (await ort.InferenceSession.create(bytes)).run(feedsOf(rs))).label!.data as string[]);

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_DRIFT_SAMPLE: '1', MODELQ_DRIFT_WINDOW: '100000' } });
  data = rows(800, 11);
  const up = await fetch(`${p.url}/v1/datasets?format=csv&name=shop`, { method: 'POST', body: toCsv(data), headers: { 'content-type': 'text/csv' } });
  expect(up.status).toBe(201);
  ds = (await up.json()).id;
  // An MLP with a hidden layer, so that structured pruning has units to remove (a linear model has none).
  const trained = await submit('/v1/jobs/train', {
    dataset: ds,
    target: 'label',
    model: { type: 'mlp', hidden: [64] },
    registerAs: 'shop',
    epochs: 40,
    seed: 3,
  });
  expect(trained.state, JSON.stringify(trained.error)).toBe('completed');
  expect(trained.result.columns.filter((c: { used: boolean }) => c.used).map((c: { name: string }) => c.name)).toEqual(COLUMNS);
}, 300_000);
afterAll(async () => {
  await p?.stop();
});

describe('a column-input model downstream of training', () => {
  it('int8, fp16 and default pruning: same per-column inputs, agreement with the parent on the dataset fed by column', async () => {
    const parent = await version('shop');
    expect(parent.inputs.map((i: { name: string }) => i.name)).toEqual(COLUMNS);
    const parentLabels = await labelsOf(await download('shop'), data);
    for (const [method, name] of [
      ['quantize-int8', 'shop-int8'],
      ['fp16', 'shop-fp16'],
      ['prune', 'shop-pruned'],
    ] as const) {
      const j = await submit('/v1/jobs/compress', { model: 'shop@1', method, dataset: ds, registerAs: name });
      expect(j.state, `${method}: ${JSON.stringify(j.error)}`).toBe('completed');
      const { report } = j.result;
      // Measured on the dataset's rows, fed by column, gaps included.
      expect(report.verdict).toMatchObject({ data: 'dataset', rows: data.length, passed: true });
      expect(report.dataset).toMatchObject({ id: ds, rows: data.length, target: 'label', features: COLUMNS });
      const v = await version(name);
      expect(v.inputs, method).toEqual(parent.inputs);
      expect(v.metadata.columns, method).toEqual(parent.metadata.columns);
      const bytes = await download(name);
      expect(await onnxCheck(bytes)).toBeNull();
      const labels = await labelsOf(bytes, data);
      const agree = labels.filter((l, i) => l === parentLabels[i]).length / data.length;
      expect(agree, method).toBeGreaterThanOrEqual(method === 'prune' ? 0.9 : 0.97);
      expect(report.dataset.argmaxAgreement, method).toBeCloseTo(agree, 10);
      if (method === 'prune') expect(report.details).toMatchObject({ form: 'structured' });
    }
  }, 600_000);

  it('distillation keeps the front end: the student takes the same columns, gaps and text included', async () => {
    const j = await submit('/v1/jobs/compress', { model: 'shop@1', method: 'distill', options: { hidden: [16] }, dataset: ds, registerAs: 'shop-student' });
    expect(j.state, JSON.stringify(j.error)).toBe('completed');
    const [teacher, student] = [await version('shop'), await version('shop-student')];
    expect(student.inputs).toEqual(teacher.inputs);
    expect(student.metadata.columns).toEqual(teacher.metadata.columns);
    const [a, b] = [await labelsOf(await download('shop'), data), await labelsOf(await download('shop-student'), data)];
    expect(a.filter((l, i) => l === b[i]).length / data.length).toBeGreaterThanOrEqual(0.93);
  }, 400_000);

  it('drift has one feature per source column, named as it, after rows with gaps are scored by column', async () => {
    const d0 = await (await fetch(`${p.url}/v1/models/shop/versions/1/drift`)).json();
    expect(d0.features.map((f: { name: string; kind: string }) => [f.name, f.kind])).toEqual([
      ['age', 'numeric'],
      ['income', 'numeric'],
      ['color', 'categorical'],
      ['review', 'text'],
    ]);
    for (let i = 0; i < 6; i++) {
      const batch = rows(100, 100 + i);
      const res = await postJson(`${p.url}/v2/models/shop/infer`, {
        inputs: [
          { name: 'age', datatype: 'FP32', shape: [100, 1], data: batch.map((r) => r.age) },
          { name: 'income', datatype: 'FP32', shape: [100, 1], data: batch.map((r) => r.income) },
          { name: 'color', datatype: 'BYTES', shape: [100, 1], data: batch.map((r) => r.color) },
          { name: 'review', datatype: 'BYTES', shape: [100, 1], data: batch.map((r) => r.review) },
        ],
      });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    const d = await until(async () => {
      const r = await (await fetch(`${p.url}/v1/models/shop/versions/1/drift`)).json();
      return r.rows >= 600 ? r : null;
    }, 'the drift window');
    // Traffic drawn like the training rows: every column ok.
    expect(Object.fromEntries(d.features.map((f: { name: string; level: string }) => [f.name, f.level]))).toEqual({
      age: 'ok',
      income: 'ok',
      color: 'ok',
      review: 'ok',
    });
  }, 120_000);
});

describe('the dashboard', () => {
  it("version view (the UI reads the version and its drift through the dashboard's /api proxy) lists the model's columns", async () => {
    const app = buildDashboard({
      queues: p.deps.queues,
      redis: p.deps.redis,
      admin: false,
      producerUrl: p.url,
      logger: createLogger('dashboard-test', 'silent'),
    });
    const server = await new Promise<Server>((resolve, reject) => {
      const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
    });
    try {
      const dash = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const v = await (await fetch(`${dash}/api/v1/models/shop/versions/1`)).json();
      expect(v.inputs.map((i: { name: string; datatype: string }) => [i.name, i.datatype])).toEqual([
        ['age', 'FP32'],
        ['income', 'FP32'],
        ['color', 'BYTES'],
        ['review', 'BYTES'],
      ]);
      expect(v.metadata.columns.filter((c: { used: boolean }) => c.used).map((c: { name: string; type: string }) => [c.name, c.type])).toEqual([
        ['age', 'number'],
        ['income', 'number'],
        ['color', 'category'],
        ['review', 'text'],
      ]);
      const drift = await (await fetch(`${dash}/api/v1/models/shop/versions/1/drift`)).json();
      expect(drift.features.map((f: { name: string }) => f.name)).toEqual(COLUMNS);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('a model of the older form (one FP32 features input)', () => {
  it('still compresses on a dataset, scores and explains', async () => {
    // What the trainer wrote before column inputs: standardization and an MLP over a packed features vector.
    const r = rng(5);
    const rand = (n: number, k = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * k);
    const bytes = exportMlp({
      featureNames: ['age', 'income'],
      mean: Float32Array.of(45, 60_000),
      scale: Float32Array.of(15, 25_000),
      layers: [
        { inputs: 2, outputs: 16, weights: rand(32), bias: rand(16, 0.1) },
        { inputs: 16, outputs: 2, weights: rand(32), bias: rand(2, 0.1) },
      ],
      task: 'classification',
      classes: ['no', 'yes'],
      target: 'label',
    });
    expect((await uploadModel(p.url, 'legacy', bytes)).status).toBe(201);
    const v = await version('legacy');
    expect(v.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [-1, 2] }]);

    // A dataset of numbers only (the older trainer's features): compressed, measured on it by row.
    const num = rows(300, 21).filter((x) => x.age !== null && x.income !== null);
    const csv = ['age,income,label', ...num.map((x) => `${x.age},${x.income},${x.label}`)].join('\n') + '\n';
    const up = await fetch(`${p.url}/v1/datasets?format=csv&name=legacy`, { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
    expect(up.status).toBe(201);
    const lds = (await up.json()).id;
    const j = await submit('/v1/jobs/compress', { model: 'legacy', method: 'quantize-int8', dataset: lds, target: 'label', registerAs: 'legacy-int8' });
    expect(j.state, JSON.stringify(j.error)).toBe('completed');
    expect(j.result.report.verdict).toMatchObject({ data: 'dataset', rows: num.length, passed: true });
    expect((await version('legacy-int8')).inputs).toEqual(v.inputs);

    // Scores as before, and explains once a background is set.
    const x = num.slice(0, 3).flatMap((row) => [row.age!, row.income!]);
    const infer = (parameters: Record<string, unknown>) =>
      postJson(`${p.url}/v2/models/legacy/infer`, { parameters, inputs: [{ name: 'features', datatype: 'FP32', shape: [3, 2], data: x }] });
    const scored = await infer({});
    expect(scored.status).toBe(200);
    expect((await scored.json()).outputs.find((o: { name: string }) => o.name === 'label').data).toHaveLength(3);
    const put = await fetch(`${p.url}/v1/models/legacy/versions/1/background`, {
      method: 'PUT',
      body: JSON.stringify({ rows: num.slice(10, 40).map((row) => [row.age!, row.income!]) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(put.status, await put.clone().text()).toBe(200);
    const res = await infer({ explain: true, explainSamples: 4 });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    const probs = body.outputs.find((o: { name: string }) => o.name === 'probabilities');
    const attr = body.outputs.find((o: { name: string }) => o.name === 'attributions');
    expect(attr.shape).toEqual([3, 2]);
    for (let n = 0; n < 3; n++) {
      const c = body.parameters.explain_class[n];
      expect(Math.abs(attr.data[n * 2] + attr.data[n * 2 + 1] - (probs.data[n * 2 + c] - body.parameters.explain_base[n]))).toBeLessThan(1e-4);
    }
  }, 240_000);
});

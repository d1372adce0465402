// Compression of a classifier the platform trained, measured on a dataset: int8 quantization costs at
// most a point of accuracy, and distillation gives a student with a quarter of the teacher's weights
// that agrees with it on rows it never saw. The test recomputes the report's figures itself with
// onnxruntime on the downloaded models. Also distillation of an uploaded model (class scores) and the
// errors a client can make.
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { columnFeeds } from '../helpers/column-feeds.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const FEATURES = 10;
const CLASSES = 4;

/** Rows of x0..x9 in [-1, 1] and a class from a fixed nonlinear rule (seeded). */
function dataset(n: number, seed: number): { csv: string; x: Float32Array; y: number[] } {
  let s = seed;
  const r = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const x = new Float32Array(n * FEATURES);
  const y: number[] = [];
  const lines = [[...Array.from({ length: FEATURES }, (_, i) => `x${i}`), 'kind'].join(',')];
  for (let i = 0; i < n; i++) {
    const v = Array.from({ length: FEATURES }, () => Number(r().toFixed(4)));
    const scores = [v[0]! + v[1]!, v[2]! - v[0]! * v[3]!, Math.sin(2 * v[4]!) + v[5]!, v[6]! * v[7]! - v[8]! + 0.3];
    const k = scores.indexOf(Math.max(...scores));
    y.push(k);
    x.set(v, i * FEATURES);
    lines.push(`${v.join(',')},${['north', 'east', 'south', 'west'][k]}`);
  }
  return { csv: lines.join('\n') + '\n', x, y };
}

let p: TestPlatform;
let data: ReturnType<typeof dataset>;
let ds: string;
let classes: string[];

const getJob = async (id: string) => (await fetch(`${p.url}/v1/jobs/${id}`)).json();
const finished = (id: string) =>
  until(
    async () => {
      const j = await getJob(id);
      return ['completed', 'failed'].includes(j.state) ? j : null;
    },
    `job ${id} to finish`,
    180_000,
  );

async function submit(path: string, body: object) {
  // Speed is not what these tests are about: a small model's int8 or pruned form is as fast as its parent within noise, which the speed gate may read as slower.
  const res = await postJson(`${p.url}${path}`, path === '/v1/jobs/compress' ? { allowSlower: true, ...body } : body);
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(202);
  return finished(json.id);
}
const download = async (name: string, v: number) => new Uint8Array(await (await fetch(`${p.url}/v1/models/${name}/versions/${v}/onnx`)).arrayBuffer());
const version = async (name: string, v: number) => (await fetch(`${p.url}/v1/models/${name}/versions/${v}`)).json();

const column = (f: number) => Array.from({ length: data.y.length }, (_, r) => data.x[r * FEATURES + f]!);
/** Predicted class names of a downloaded platform classifier over every dataset row, fed by column. */
async function predict(bytes: Uint8Array): Promise<{ labels: string[]; probabilities: Float32Array }> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(columnFeeds(Object.fromEntries(Array.from({ length: FEATURES }, (_, f) => [`x${f}`, column(f)]))));
  // A platform classifier's label is the class itself.
  return { labels: Array.from(out.label!.data as string[]), probabilities: out.probabilities!.data as Float32Array };
}
const accuracy = (labels: string[]) => labels.filter((l, i) => l === ['north', 'east', 'south', 'west'][data.y[i]!]).length / labels.length;

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  data = dataset(4000, 17);
  const res = await fetch(`${p.url}/v1/datasets?format=csv&name=compass`, { method: 'POST', body: data.csv, headers: { 'content-type': 'text/csv' } });
  expect(res.status).toBe(201);
  ds = (await res.json()).id;
  const trained = await submit('/v1/jobs/train', {
    dataset: ds,
    target: 'kind',
    model: { type: 'mlp', hidden: [256, 256] },
    epochs: 60,
    patience: 10,
    seed: 3,
    registerAs: 'compass',
  });
  expect(trained.state, JSON.stringify(trained.error)).toBe('completed');
  expect(trained.result.metrics.accuracy).toBeGreaterThan(0.85);
  classes = (await version('compass', 1)).metadata.classes;
  expect(classes).toEqual(['east', 'north', 'south', 'west']);
}, 240_000);
afterAll(async () => {
  await p?.stop();
});

describe('compression measured on a dataset', () => {
  it('quantize-int8 of a platform-trained classifier: <= 0.3x bytes, accuracy drop <= 1 point, figures that onnxruntime confirms', async () => {
    const j = await submit('/v1/jobs/compress', { model: 'compass@1', method: 'quantize-int8', dataset: ds, registerAs: 'compass-int8' });
    expect(j.state, JSON.stringify(j.error)).toBe('completed');
    const { report } = j.result;
    expect(report.bytesAfter / report.bytesBefore).toBeLessThanOrEqual(0.3);
    // 32 seeded normal rows, one draw per column input: one of them may sit on a class boundary.
    expect(report.argmaxAgreement).toBeGreaterThanOrEqual(31 / 32);
    expect(report.dataset.argmaxAgreement).toBeGreaterThanOrEqual(0.97);
    // Target and features came from the training lineage.
    expect(report.dataset).toMatchObject({ id: ds, rows: 4000, target: 'kind', features: Array.from({ length: FEATURES }, (_, i) => `x${i}`) });
    expect(report.dataset.accuracyBefore - report.dataset.accuracyAfter).toBeLessThanOrEqual(0.01);

    const [before, after] = [await predict(await download('compass', 1)), await predict(await download('compass-int8', 1))];
    expect(report.dataset.accuracyBefore).toBeCloseTo(accuracy(before.labels), 10);
    expect(report.dataset.accuracyAfter).toBeCloseTo(accuracy(after.labels), 10);
    const agree = before.labels.filter((l, i) => l === after.labels[i]).length / before.labels.length;
    expect(report.dataset.argmaxAgreement).toBeCloseTo(agree, 10);
    expect(await onnxCheck(await download('compass-int8', 1))).toBeNull();
    // The compressed version keeps the meaning of its outputs.
    expect((await version('compass-int8', 1)).metadata).toEqual((await version('compass', 1)).metadata);
  }, 120_000);

  it('fp16 and structured pruning of the same classifier: close outputs, fewer weights, both measured on the dataset', async () => {
    const h = await submit('/v1/jobs/compress', { model: 'compass@1', method: 'fp16', dataset: ds, registerAs: 'compass-fp16' });
    expect(h.state, JSON.stringify(h.error)).toBe('completed');
    expect(h.result.report.maxAbsDiff).toBeLessThan(1e-2);
    expect(h.result.report.dataset.maxAbsDiff).toBeLessThan(1e-2);
    expect(h.result.report.dataset.argmaxAgreement).toBeGreaterThanOrEqual(0.99);
    const pr = await submit('/v1/jobs/compress', {
      model: 'compass@1',
      method: 'prune',
      options: { structured: true, keep: 0.5 },
      dataset: ds,
      registerAs: 'compass-pruned',
    });
    expect(pr.state, JSON.stringify(pr.error)).toBe('completed');
    const { report } = pr.result;
    expect(report.details.paramsAfter).toBeLessThan(report.details.paramsBefore * 0.5);
    expect(report.dataset.accuracyAfter).toBeGreaterThan(0.5);
    const pruned = await predict(await download('compass-pruned', 1));
    expect(report.dataset.accuracyAfter).toBeCloseTo(accuracy(pruned.labels), 10);
    for (const name of ['compass-fp16', 'compass-pruned']) expect(await onnxCheck(await download(name, 1))).toBeNull();
  }, 120_000);

  it("distill: a student with at most a quarter of the weights, the teacher's signature, >= 95% agreement on held-out rows", async () => {
    const j = await submit('/v1/jobs/compress', {
      model: 'compass@1',
      method: 'distill',
      options: { hidden: [32] },
      dataset: ds,
      registerAs: 'compass-student',
    });
    expect(j.state, JSON.stringify(j.error)).toBe('completed');
    const { report } = j.result;
    expect(report.details.studentParams).toBeLessThanOrEqual(report.details.teacherParams / 4);
    expect(report.details).toMatchObject({ hidden: [32], temperature: 2, heldOutRows: 400, trainRows: 3600, augmentedRows: 3600 * 9 });
    expect(report.details.heldOutAgreement).toBeGreaterThanOrEqual(0.95);
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore / 4);
    expect(report.details.epochsRun).toBeGreaterThanOrEqual(report.details.bestEpoch);

    const [teacher, student] = [await version('compass', 1), await version('compass-student', 1)];
    expect(student.inputs).toEqual(teacher.inputs);
    expect(student.outputs).toEqual(teacher.outputs);
    expect(student.lineage).toMatchObject({
      parent: { name: 'compass', version: 1 },
      method: 'distill',
      dataset: ds,
      options: { hidden: [32], temperature: 2 },
    });

    const studentBytes = await download('compass-student', 1);
    expect(await onnxCheck(studentBytes)).toBeNull();
    const [a, b] = [await predict(await download('compass', 1)), await predict(studentBytes)];
    const agree = a.labels.filter((l, i) => l === b.labels[i]).length / a.labels.length;
    expect(agree).toBeGreaterThanOrEqual(0.95);
    expect(report.dataset.argmaxAgreement).toBeCloseTo(agree, 10);
    // Probabilities, not just labels, follow the teacher's.
    let diff = 0;
    for (let i = 0; i < a.probabilities.length; i++) diff += Math.abs(a.probabilities[i]! - b.probabilities[i]!);
    expect(diff / a.probabilities.length).toBeLessThan(0.05);

    // Served like the teacher: the same request (by column) works against both.
    const req = { inputs: Array.from({ length: FEATURES }, (_, f) => ({ name: `x${f}`, shape: [1, 1], datatype: 'FP32', data: [data.x[FEATURES + f]!] })) };
    const res = await postJson(`${p.url}/v2/models/compass-student/infer`, req);
    expect(res.status).toBe(200);
    expect((await res.json()).outputs.map((o: { name: string }) => o.name).sort()).toEqual(['label', 'probabilities']);
  }, 180_000);

  it('distills an uploaded model with raw class scores, features being the numeric columns', async () => {
    const teacherBytes = buildMlp({ sizes: [FEATURES, 256, CLASSES], seed: 4 });
    expect((await uploadModel(p.url, 'scorer', teacherBytes)).status).toBe(201);
    const j = await submit('/v1/jobs/compress', {
      model: 'scorer',
      method: 'distill',
      options: { hidden: [60], temperature: 1, learningRate: 0.003 },
      dataset: ds,
      registerAs: 'scorer-student',
    });
    expect(j.state, JSON.stringify(j.error)).toBe('completed');
    const { report } = j.result;
    expect(report.dataset.features).toHaveLength(FEATURES);
    expect(report.dataset.target).toBeUndefined();
    expect(report.details.studentParams).toBeLessThanOrEqual(report.details.teacherParams / 4);
    expect(report.details.heldOutAgreement).toBeGreaterThanOrEqual(0.95);
    const bytes = await download('scorer-student', 1);
    expect(await onnxCheck(bytes)).toBeNull();
    const [t, s] = [await ort.InferenceSession.create(teacherBytes), await ort.InferenceSession.create(bytes)];
    expect(s.inputNames).toEqual(t.inputNames);
    expect(s.outputNames).toEqual(t.outputNames);
  }, 180_000);

  it("distills a regression teacher: one value per row, in the teacher's units", async () => {
    const teacherBytes = buildMlp({ sizes: [FEATURES, 64, 1], seed: 9 });
    expect((await uploadModel(p.url, 'valuer', teacherBytes)).status).toBe(201);
    const j = await submit('/v1/jobs/compress', { model: 'valuer', method: 'distill', options: { hidden: [12] }, dataset: ds, registerAs: 'valuer-student' });
    expect(j.state, JSON.stringify(j.error)).toBe('completed');
    const bytes = await download('valuer-student', 1);
    expect(await onnxCheck(bytes)).toBeNull();
    const [t, s] = [await ort.InferenceSession.create(teacherBytes), await ort.InferenceSession.create(bytes)];
    const x = new ort.Tensor('float32', data.x, [data.y.length, FEATURES]);
    const [a, b] = [(await t.run({ input: x })).output!, (await s.run({ input: x })).output!];
    expect(b.dims).toEqual(a.dims);
    const ta = a.data as Float32Array;
    const mean = ta.reduce((u, v) => u + v, 0) / ta.length;
    const sd = Math.sqrt(ta.reduce((u, v) => u + (v - mean) ** 2, 0) / ta.length);
    let se = 0;
    for (let i = 0; i < ta.length; i++) se += (ta[i]! - (b.data as Float32Array)[i]!) ** 2;
    // The student explains almost all of the teacher's variance.
    expect(Math.sqrt(se / ta.length)).toBeLessThan(0.2 * sd);
    expect(j.result.report.dataset.maxAbsDiff).toBeGreaterThan(0);
    expect(j.result.report.details.heldOutAgreement).toBeUndefined();
  }, 180_000);

  it('fails clearly: no dataset, an unknown dataset or column, a dataset that does not fit the input', async () => {
    const bad = async (body: unknown, msg: RegExp) => {
      const res = await postJson(`${p.url}/v1/jobs/compress`, body);
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toMatch(msg);
    };
    // An uploaded model has no training dataset in its lineage to default to (a trained one has: compass).
    expect((await uploadModel(p.url, 'wide', buildMlp({ sizes: [64, 8, 3], seed: 2 }))).status).toBe(201);
    await bad({ model: 'wide', method: 'distill', options: { hidden: [8] } }, /dataset: distill needs a dataset/);
    await bad({ model: 'compass', method: 'fp16', dataset: 'ds_00000000000000000000' }, /dataset: no dataset/);
    await bad({ model: 'compass', method: 'fp16', dataset: ds, features: ['x0', 'nope'] }, /features\[1\]: the dataset has no column "nope"/);
    await bad({ model: 'compass', method: 'fp16', dataset: ds, features: ['kind'] }, /features\[0\]: column "kind" is not numeric/);
    await bad({ model: 'wide', method: 'fp16', target: 'kind' }, /target: names dataset columns, but no dataset/);
    // Accepted, then the job says why it cannot use the rows; nothing is registered.
    const j = await submit('/v1/jobs/compress', { model: 'wide', method: 'fp16', dataset: ds });
    expect(j.state).toBe('failed');
    expect(j.error.message).toMatch(/input "input" takes 64 values per row; the dataset gives 10 feature columns/);
    expect((await (await fetch(`${p.url}/v1/models/wide`)).json()).versions).toHaveLength(1);
  }, 60_000);
});

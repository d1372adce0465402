// Training end to end on the real Redis with two worker processes: datasets generated here from a
// known rule, a classification and a regression job, registered versions whose ONNX reproduces the
// trainer's predictions and passes the official checker, identical seeds, cancel, and 400s.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Predictions } from '../../workers/training/child/run-training.ts';
import { tmpDir } from '../fixtures/models.ts';
import { referenceFeeds } from '../helpers/column-feeds.ts';
import { postJson, startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let cls: { id: string };
let reg: { id: string };

/** Deterministic rows: x1..x3 in [-1, 1], a string column, a class by x1 + x2 and y = 3 x1 - 2 x2 + x3². */
function csv(n: number, seed: number): string {
  let s = seed;
  const r = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const lines = ['x1,x2,x3,color,label,y'];
  for (let i = 0; i < n; i++) {
    const [a, b, c] = [r(), r(), r()];
    const label = a + b < -0.5 ? 'low' : a + b < 0.5 ? 'mid' : 'high';
    lines.push(`${a.toFixed(5)},${b.toFixed(5)},${c.toFixed(5)},${i % 2 ? 'red' : 'blue'},${label},${(3 * a - 2 * b + c * c).toFixed(5)}`);
  }
  return lines.join('\n') + '\n';
}

async function upload(body: string): Promise<{ id: string }> {
  const res = await fetch(`${p.url}/v1/datasets?format=csv&name=rule`, { method: 'POST', body, headers: { 'content-type': 'text/csv' } });
  expect(res.status).toBe(201);
  return res.json();
}

async function train(body: Record<string, unknown>): Promise<string> {
  const res = await postJson(`${p.url}/v1/jobs/train`, body);
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(202);
  return json.id;
}

const getJob = async (id: string) => (await fetch(`${p.url}/v1/jobs/${id}`)).json();
/** Waits for the end of the job (every attempt); the attempts' logs come with a failure. */
const finished = (id: string) =>
  until(
    async () => {
      const j = await getJob(id);
      if (!['completed', 'failed', 'cancelled'].includes(j.state) || (j.state === 'cancelled' && !j.finishedAt)) return null;
      if (j.state !== 'cancelled' && j.attempts > 1)
        console.log(
          `job ${id} took ${j.attempts} attempts:\n${p.workers
            .flatMap((w) => w.lines)
            .filter((l) => l.includes(id))
            .join('\n')}`,
        );
      return j;
    },
    `job ${id} to finish`,
    60_000,
  );

/** Downloads the registered model, runs the official checker on it and feeds it the trainer's reference rows. */
async function checkExport(name: string, version: number, predictionsKey: string, classes?: (string | number)[]) {
  const bytes = Buffer.from(await (await fetch(`${p.url}/v1/models/${name}/versions/${version}/onnx`)).arrayBuffer());
  const file = path.join(tmpDir('trained'), `${name}.onnx`);
  fs.writeFileSync(file, bytes);
  execFileSync('/usr/bin/python3', ['-c', 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', file]);
  const ref = JSON.parse(fs.readFileSync(path.join(p.cfg.MODELQ_DATA_DIR, predictionsKey), 'utf8')) as Predictions;
  const rows = ref.rows;
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(referenceFeeds(ref));
  let diff = 0;
  const cmp = (got: ArrayLike<number>, want: number[]) =>
    want.forEach((w, i) => {
      diff = Math.max(diff, Math.abs(got[i]! - w));
    });
  if (ref.probabilities) {
    cmp(out.probabilities!.data as Float32Array, ref.probabilities);
    // The label is the class itself; the trainer's reference holds indices into the class list.
    expect(Array.from(out.label!.data as string[])).toEqual(ref.labels!.map((i) => classes![i]));
  } else {
    cmp(out.prediction!.data as Float32Array, ref.prediction!);
  }
  expect(diff).toBeLessThan(1e-4);
  return { ref, rows, out };
}

beforeAll(async () => {
  p = await startPlatform({ workers: 2 });
  [cls, reg] = await Promise.all([upload(csv(600, 3)), upload(csv(600, 4))]);
});
afterAll(async () => {
  await p?.stop();
});

describe('training jobs', () => {
  it('trains a classifier and a regressor, registers them with lineage and metrics, and exports what the trainer predicts', async () => {
    // The network, named: the default on tabular data is auto, which on few rows picks linear or trees.
    const common = { features: ['x1', 'x2', 'x3'], model: { type: 'mlp' }, epochs: 40, batchSize: 32, seed: 1 };
    const [cid, rid] = await Promise.all([
      train({ dataset: cls.id, target: 'label', registerAs: 'rule-cls', ...common }),
      train({ dataset: reg.id, target: 'y', registerAs: 'rule-reg', ...common }),
    ]);
    const [c, r] = await Promise.all([finished(cid), finished(rid)]);
    expect(c.state, JSON.stringify(c.error)).toBe('completed');
    expect(r.state, JSON.stringify(r.error)).toBe('completed');

    expect(c).toMatchObject({ kind: 'train', result: { model: { name: 'rule-cls', version: 1 } } });
    expect(c.result.metrics.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(c.result.metrics.logLoss).toBeLessThan(0.4);
    expect(c.progress).toMatchObject({ epoch: c.result.epochsRun, epochs: 40, metric: 'accuracy', startedAtEpoch: 1 });
    expect(c.progress.curve).toHaveLength(c.result.epochsRun);
    expect(Object.keys(c.progress.curve[0]).sort()).toEqual(['epoch', 'loss', 'valLoss', 'valMetric']);
    expect(r.result.metrics.r2).toBeGreaterThanOrEqual(0.95);
    expect(r.result.metrics.rmse).toBeLessThan(0.5);

    const v = await (await fetch(`${p.url}/v1/models/rule-cls/versions/1`)).json();
    expect(v.lineage).toEqual({ source: 'train', job: cid, dataset: cls.id, hyperparameters: c.spec.hyperparameters, tenant: 'default', keyId: 'open' });
    expect(v.lineage.hyperparameters).toMatchObject({ task: 'classification', model: { type: 'mlp', hidden: [128] }, learningRate: 0.001, seed: 1 });
    expect(v.metrics).toEqual(c.result.metrics);
    expect(v.sha256).toBe(c.result.sha256);
    // One input per source column, named as the column.
    expect(v.inputs).toEqual(['x1', 'x2', 'x3'].map((name) => ({ name, datatype: 'FP32', shape: [-1, 1] })));
    expect(v.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
    ]);
    // Classes and features are JSON lists in the version's metadata and in the protocol's model metadata.
    expect(v.metadata).toMatchObject({ task: 'classification', target: 'label', features: ['x1', 'x2', 'x3'], classes: ['high', 'low', 'mid'] });
    const md = await (await fetch(`${p.url}/v2/models/rule-cls`)).json();
    expect(md.parameters).toMatchObject({ classes: ['high', 'low', 'mid'], features: ['x1', 'x2', 'x3'] });
    expect((await (await fetch(`${p.url}/v2/models/rule-cls/versions/1`)).json()).parameters.classes).toEqual(['high', 'low', 'mid']);
    const rv = await (await fetch(`${p.url}/v1/models/rule-reg/versions/1`)).json();
    expect(rv.outputs).toEqual([{ name: 'prediction', datatype: 'FP32', shape: [-1, 1] }]);
    expect(rv.metrics).toEqual(r.result.metrics);

    const { ref } = await checkExport('rule-cls', 1, c.result.predictionsKey, ['high', 'low', 'mid']);
    await checkExport('rule-reg', 1, r.result.predictionsKey);

    // And the platform serves it: raw values by column in, the trainer's label out.
    const res = await postJson(`${p.url}/v2/models/rule-cls/infer`, {
      inputs: ['x1', 'x2', 'x3'].map((name) => ({ name, shape: [1, 1], datatype: 'FP32', data: [ref.numbers![name]![0]] })),
    });
    const body = await res.json();
    expect(body.outputs.find((o: { name: string }) => o.name === 'label')).toMatchObject({
      datatype: 'BYTES',
      data: [['high', 'low', 'mid'][ref.labels![0]!]],
    });
  });

  it('gives identical models for identical seeds', async () => {
    const common = { dataset: reg.id, target: 'y', model: { type: 'mlp' }, epochs: 4, seed: 11 };
    const ids = await Promise.all([train({ ...common, registerAs: 'seed-a' }), train({ ...common, registerAs: 'seed-b' })]);
    const [a, b] = await Promise.all(ids.map(finished));
    expect(a.state).toBe('completed');
    expect(b.state).toBe('completed');
    expect(a.result.sha256).toBe(b.result.sha256);
    expect(a.result.metrics).toEqual(b.result.metrics);
    expect(a.progress.curve).toEqual(b.progress.curve);
  });

  it('cancels a running job: the trainer stops and nothing is registered', async () => {
    const id = await train({ dataset: cls.id, target: 'label', registerAs: 'never', model: { type: 'mlp' }, epochs: 10_000, patience: 10_000, batchSize: 16 });
    await until(async () => (await getJob(id)).progress?.epoch >= 2, 'two epochs', 30_000);
    const res = await fetch(`${p.url}/v1/jobs/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(202);
    expect((await res.json()).state).toBe('cancelled');
    const done = await finished(id);
    expect(done).toMatchObject({ state: 'cancelled', error: { code: 'cancelled' } });
    expect(done.progress.epoch).toBeLessThan(10_000);
    expect((await fetch(`${p.url}/v1/jobs/${id}/cancel`, { method: 'POST' })).status).toBe(409);
    expect((await fetch(`${p.url}/v1/models/never`)).status).toBe(404);
  });

  it('rejects bad requests with 400s naming the field', async () => {
    const bad = async (body: Record<string, unknown>, message: RegExp) => {
      const res = await postJson(`${p.url}/v1/jobs/train`, { registerAs: 'x', ...body });
      expect(res.status).toBe(400);
      expect((await res.json()).error.message).toMatch(message);
    };
    await bad({ dataset: 'ds_00000000000000000000', target: 'y' }, /^dataset: no dataset "ds_00000000000000000000"/);
    await bad({ dataset: cls.id, target: 'price' }, /^target: the dataset has no column "price"/);
    await bad({ dataset: cls.id, target: 'y', columnTypes: { colour: 'text' } }, /^columnTypes: the dataset has no column "colour"/);
    await bad({ dataset: cls.id, target: 'y', columnTypes: { color: 'number' } }, /^columnTypes\.color: column "color" holds strings/);
    await bad({ dataset: cls.id, target: 'y', epochs: 0 }, /^body\.epochs/);
    await bad({ dataset: cls.id, target: 'y', registerAs: 'Not A Name' }, /^body\.registerAs/);
    expect((await fetch(`${p.url}/v1/jobs/train_00000000000000000000`)).status).toBe(404);
    expect((await fetch(`${p.url}/v1/jobs/whatever`)).status).toBe(404);
  });
});

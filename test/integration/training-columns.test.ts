// A trained model speaks in the user's columns: a CSV with numbers, categories, empty cells, free
// text and an identifier, trained with only `target`; every column is listed as used or left out
// with its reason (none for its gaps), the model has one input per column and imputes and encodes
// inside the graph, and the downloaded file run directly in onnxruntime-node, fed by column (NaN and
// "" for missing values, an unseen category), labels the training CSV well.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseModelColumns, type ColumnInfo } from '../../core/model-columns.ts';
import { tmpDir } from '../fixtures/models.ts';
import { columnFeeds } from '../helpers/column-feeds.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;

const POSITIVE = ['great', 'excellent', 'love', 'perfect'];
const NEGATIVE = ['bad', 'broken', 'awful', 'refund'];
const FILLER = ['the', 'item', 'arrived', 'today', 'box', 'color', 'size', 'fits'];

interface Row {
  id: string;
  age: number | null;
  income: number | null;
  color: string | null;
  review: string;
  label: 'yes' | 'no';
}

/** A known rule over every kind of column; gaps in each, and a missing income itself says something. */
function rows(n: number, seed: number): Row[] {
  let s = seed;
  const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  const pick = <T>(a: T[]) => a[Math.floor(r() * a.length)]!;
  return Array.from({ length: n }, (_, i) => {
    const age = 20 + Math.round(r() * 50);
    const incomeMissing = r() < 0.15;
    const color = pick(['red', 'green', 'blue']);
    const positive = r() < 0.5;
    const words = [pick(FILLER), pick(positive ? POSITIVE : NEGATIVE), pick(FILLER), pick(FILLER)];
    const score = (age > 45 ? 1 : 0) + (color === 'red' ? 1 : 0) + (positive ? 1 : 0) + (incomeMissing ? 1 : 0);
    return {
      id: `u${(i * 7919 + 13).toString(36)}x`,
      // Gaps that carry no signal: the model must impute them, not drop the column.
      age: r() < 0.1 ? null : age,
      income: incomeMissing ? null : Math.round(20_000 + r() * 80_000),
      color: r() < 0.1 ? null : color,
      review: words.join(' '),
      label: score >= 2 ? 'yes' : 'no',
    };
  });
}

const toCsv = (rs: Row[]) =>
  ['id,age,income,color,review,label', ...rs.map((x) => [x.id, x.age ?? '', x.income ?? '', x.color ?? '', x.review, x.label].join(','))].join('\n') + '\n';

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
});
afterAll(async () => {
  await p?.stop();
});

describe('a model trained on a CSV with gaps takes its columns', () => {
  it('lists every column, imputes and encodes inside the graph, scores the CSV fed by column, and distills', async () => {
    const data = rows(800, 5);
    const up = await fetch(`${p.url}/v1/datasets?format=csv&name=shop`, { method: 'POST', body: toCsv(data), headers: { 'content-type': 'text/csv' } });
    expect(up.status).toBe(201);
    const ds = (await up.json()) as { id: string };

    const res = await postJson(`${p.url}/v1/jobs/train`, { dataset: ds.id, target: 'label', registerAs: 'shop', epochs: 60, seed: 3 });
    const accepted = await res.json();
    expect(res.status, JSON.stringify(accepted)).toBe(202);
    // The 202 already says which columns are features, and why the others are not: none for its gaps.
    expect(accepted.features).toEqual(['age', 'income', 'color', 'review']);
    expect(accepted.columns).toEqual([
      { name: 'id', type: 'text', used: false, reason: 'identifier: a distinct value in every row' },
      { name: 'age', type: 'number', used: true },
      { name: 'income', type: 'number', used: true },
      { name: 'color', type: 'category', used: true },
      { name: 'review', type: 'text', used: true },
      { name: 'label', type: 'category', used: false, reason: 'the target' },
    ]);

    const job = await until(
      async () => {
        const j = await (await fetch(`${p.url}/v1/jobs/${accepted.id}`)).json();
        return ['completed', 'failed'].includes(j.state) ? j : null;
      },
      'the train job',
      120_000,
    );
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    const columns = job.result.columns as ColumnInfo[];
    expect(columns.map((c) => [c.name, c.used, c.reason ?? null])).toEqual(accepted.columns.map((c: ColumnInfo) => [c.name, c.used, c.reason ?? null]));
    const byName = Object.fromEntries(columns.map((c) => [c.name, c]));
    expect(byName.age).toMatchObject({ type: 'number', imputation: { strategy: 'median' }, missingIndicator: true });
    expect(byName.age!.imputation!.value).toBeGreaterThanOrEqual(20);
    expect(byName.age!.imputation!.value).toBeLessThanOrEqual(70);
    expect(byName.income).toMatchObject({ type: 'number', missingIndicator: true });
    // The training split had gaps in color: "" is its missing level.
    expect(byName.color).toMatchObject({ type: 'category', levels: ['', 'blue', 'green', 'red'] });
    expect(byName.review).toMatchObject({ type: 'text', used: true });

    // The version: one input per used column, named as it, and the same column list in its metadata.
    const v = await (await fetch(`${p.url}/v1/models/shop/versions/1`)).json();
    expect(v.inputs).toEqual([
      { name: 'age', datatype: 'FP32', shape: [-1, 1] },
      { name: 'income', datatype: 'FP32', shape: [-1, 1] },
      { name: 'color', datatype: 'BYTES', shape: [-1, 1] },
      { name: 'review', datatype: 'BYTES', shape: [-1, 1] },
    ]);
    expect(v.metadata.columns).toEqual(columns);

    const bytes = Buffer.from(await (await fetch(`${p.url}/v1/models/shop/versions/1/onnx`)).arrayBuffer());
    expect(await onnxCheck(bytes)).toBeNull();
    const session = await ort.InferenceSession.create(bytes);
    // The ONNX metadata carries the same contract.
    const md = parseModelColumns(metadataProp(bytes, 'modelq.columns'));
    expect(md).toEqual({ columns, target: 'label', classes: ['no', 'yes'] });

    // The training CSV, fed by column as it is: empty cells as NaN and "".
    const out = await session.run(
      columnFeeds({
        age: data.map((x) => x.age),
        income: data.map((x) => x.income),
        color: data.map((x) => x.color),
        review: data.map((x) => x.review),
      }),
    );
    const labels = out.label!.data as string[];
    const accuracy = labels.filter((l, i) => l === data[i]!.label).length / data.length;
    console.log(`column-input model on its training CSV: accuracy ${accuracy.toFixed(3)} (validation ${job.result.metrics.accuracy.toFixed(3)})`);
    expect(accuracy).toBeGreaterThanOrEqual(0.85);

    // Missing everything, an unseen category, empty text: still a label and probabilities that sum to 1.
    const odd = await session.run(
      columnFeeds({ age: [null, 60], income: [null, NaN], color: ['purple', ''], review: ['', 'zzz unknown words'] }, new Set(['age', 'income'])),
    );
    expect((odd.label!.data as string[]).every((l) => l === 'yes' || l === 'no')).toBe(true);
    const probs = odd.probabilities!.data as Float32Array;
    expect(probs[0]! + probs[1]!).toBeCloseTo(1, 5);
    expect(Array.from(probs).every(Number.isFinite)).toBe(true);
    // A missing income (the rule counts it) moves the prediction towards "yes", as in the data.
    const withIncome = await session.run(columnFeeds({ age: [30], income: [50_000], color: ['blue'], review: ['the bad box'] }));
    const withoutIncome = await session.run(columnFeeds({ age: [30], income: [null], color: ['blue'], review: ['the bad box'] }, new Set(['age', 'income'])));
    expect((withoutIncome.probabilities!.data as Float32Array)[1]!).toBeGreaterThan((withIncome.probabilities!.data as Float32Array)[1]!);

    // The training CSV scored as a batch: its CSV output names the probabilities by class and the
    // label as one column; its Parquet output has the label as a string column (#29 item 5).
    const b = await (await fetch(`${p.url}/v1/batches?model=shop`, { method: 'POST', body: toCsv(data), headers: { 'content-type': 'text/csv' } })).json();
    await until(async () => ((await (await fetch(`${p.url}/v1/batches/${b.id}`)).json()).status === 'completed' ? true : null), 'the batch', 120_000);
    const csvOut = (await (await fetch(`${p.url}/v1/batches/${b.id}/output?format=csv`)).text()).split('\n');
    expect(csvOut[0]).toBe('row,id,label,probabilities_no,probabilities_yes');
    const pqBytes = await (await fetch(`${p.url}/v1/batches/${b.id}/output?format=parquet`)).arrayBuffer();
    expect((await parquetReadObjects({ file: pqBytes })).map((r) => r.label)).toEqual(labels);

    // Distillation keeps the front end (imputation, one-hot, TF-IDF): the student takes the same
    // columns, gaps included, and labels the CSV as its teacher does.
    const dres = await postJson(`${p.url}/v1/jobs/compress`, {
      model: 'shop@1',
      method: 'distill',
      options: { hidden: [16] },
      dataset: ds.id,
      registerAs: 'shop-student',
    });
    const djson = await dres.json();
    expect(dres.status, JSON.stringify(djson)).toBe(202);
    const distilled = await until(
      async () => {
        const j = await (await fetch(`${p.url}/v1/jobs/${djson.id}`)).json();
        return ['completed', 'failed'].includes(j.state) ? j : null;
      },
      'the distill job',
      240_000,
    );
    expect(distilled.state, JSON.stringify(distilled.error)).toBe('completed');
    expect(distilled.result.report.dataset).toMatchObject({ rows: data.length, target: 'label', features: ['age', 'income', 'color', 'review'] });
    const student = await (await fetch(`${p.url}/v1/models/shop-student/versions/1`)).json();
    expect(student.inputs).toEqual(v.inputs);
    const studentBytes = Buffer.from(await (await fetch(`${p.url}/v1/models/shop-student/versions/1/onnx`)).arrayBuffer());
    expect(await onnxCheck(studentBytes)).toBeNull();
    const sOut = await (
      await ort.InferenceSession.create(studentBytes)
    ).run(
      columnFeeds({
        age: data.map((x) => x.age),
        income: data.map((x) => x.income),
        color: data.map((x) => x.color),
        review: data.map((x) => x.review),
      }),
    );
    const agree = (sOut.label!.data as string[]).filter((l, i) => l === labels[i]).length / data.length;
    expect(agree).toBeGreaterThanOrEqual(0.95);
  }, 400_000);
});

/** One metadata_props value of an ONNX file, read with the official onnx package. */
function metadataProp(bytes: Uint8Array, key: string): string | undefined {
  const file = path.join(tmpDir('columns-md'), 'model.onnx');
  fs.writeFileSync(file, bytes);
  const script = `import onnx,sys,json\nm=onnx.load(sys.argv[1])\nprint(json.dumps({p.key: p.value for p in m.metadata_props}))`;
  const out = execFileSync('/usr/bin/python3', ['-c', script, file], { encoding: 'utf8' });
  return (JSON.parse(out) as Record<string, string>)[key];
}

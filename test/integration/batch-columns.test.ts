// A column-input model (one [N,1] input per source column) scores the table it was made for: the
// same CSV, and a copy with shuffled columns plus the target, as CSV, JSONL and Parquet batches,
// give the labels of a direct onnxruntime run fed by column, with empty cells, nulls, absent keys,
// "NaN" and unseen categories as missing values; the target is ignored and listed; a file without
// a required column is refused naming it.
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildColumnModel, COLUMN_CLASSES, columnCsv, columnRows, directLabels, type ColumnRow } from '../fixtures/column-models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const model = buildColumnModel();
const rows = columnRows(400);
let expected: string[];

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'cols', model)).status).toBe(201);
  expected = await directLabels(model, rows);
  // The fixture's rows reach every class, so a wrong column order or missing value would show.
  expect(new Set(expected).size).toBe(3);
});
afterAll(async () => {
  await p?.stop();
});

const submit = (body: Uint8Array | string, type: string, query = 'model=cols') =>
  fetch(`${p.url}/v1/batches?${query}`, { method: 'POST', body: typeof body === 'string' ? body : Buffer.from(body), headers: { 'content-type': type } });

/** Submits, waits for the end, and returns the batch and its output lines' labels by id. */
async function score(body: Uint8Array | string, type: string) {
  const res = await submit(body, type);
  const accepted = await res.json();
  expect(res.status, JSON.stringify(accepted)).toBe(202);
  const done = await until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${accepted.id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${accepted.id} to end`,
    120_000,
  );
  const text = await (await fetch(`${p.url}/v1/batches/${accepted.id}/output`)).text();
  const labels = new Map<string, string>();
  for (const line of text.trim().split('\n')) {
    const o = JSON.parse(line) as { id: string; outputs: { label: string | string[] } };
    labels.set(String(o.id), ([] as string[]).concat(o.outputs.label)[0]!);
  }
  return { accepted, done, labels };
}

function expectLabels(labels: Map<string, string>) {
  expect(labels.size).toBe(rows.length);
  rows.forEach((r, i) => {
    if (labels.get(r.id) !== expected[i]) throw new Error(`row ${r.id}: ${labels.get(r.id)}, a direct run says ${expected[i]}`);
  });
}

const ORDERED: (keyof ColumnRow)[] = ['id', 'age', 'income', 'plan', 'city'];
const SHUFFLED: (keyof ColumnRow)[] = ['city', 'target', 'income', 'id', 'plan', 'age'];

describe('column-input models score their own table', () => {
  it('CSV: the columns in order, then shuffled with the target, give the direct run\'s labels; "NaN" is missing too', async () => {
    const a = await score(columnCsv(rows, ORDERED), 'text/csv');
    expect(a.done).toMatchObject({ status: 'completed', requestCounts: { total: rows.length, completed: rows.length, failed: 0 } });
    expect(a.done.ignoredColumns).toBeUndefined();
    expectLabels(a.labels);
    // The CSV download names a one-value output as itself; this uploaded model records no classes in
    // its version, so its probabilities are numbered (trained models' are named by class).
    const out = await (await fetch(`${p.url}/v1/batches/${a.accepted.id}/output?format=csv`)).text();
    expect(out.split('\n')[0]).toBe(['row', 'id', 'label', ...COLUMN_CLASSES.map((_, i) => `probabilities_${i}`)].join(','));

    // Missing numbers written as "NaN" (as pandas' to_csv(na_rep='NaN') does) mean the same as empty cells.
    const csv = columnCsv(rows, SHUFFLED, 'NaN');
    expect(csv).toMatch(/,NaN,/);
    const b = await score(csv, 'text/csv');
    expect(b.accepted.ignoredColumns).toEqual(['target']);
    expect(b.done).toMatchObject({ status: 'completed', ignoredColumns: ['target'], requestCounts: { completed: rows.length, failed: 0 } });
    expectLabels(b.labels);
  });

  it('JSONL: null values and absent keys are missing values; extra keys are ignored and listed', async () => {
    const lines = rows.map((r, i) => {
      const o: Record<string, unknown> = { target: r.target, id: r.id };
      for (const k of ['age', 'income', 'plan', 'city'] as const) {
        // Alternate the two ways JSON says "missing": null, or no key at all.
        if (r[k] === null) {
          if (i % 2) o[k] = null;
        } else o[k] = r[k];
      }
      return JSON.stringify(o);
    });
    const j = await score(`${lines.join('\n')}\n`, 'application/x-ndjson');
    expect(j.done).toMatchObject({ status: 'completed', ignoredColumns: ['target'], requestCounts: { completed: rows.length, failed: 0 } });
    expectLabels(j.labels);
  });

  it('Parquet: optional columns with nulls, in any order, the target ignored and listed', async () => {
    const col = <K extends keyof ColumnRow>(k: K) => rows.map((r) => r[k]);
    const file = parquetWriteBuffer({
      columnData: [
        { name: 'target', data: col('target'), type: 'STRING' },
        { name: 'city', data: col('city'), type: 'STRING', nullable: true },
        { name: 'income', data: Float64Array.from(rows, (r) => r.income ?? Number.NaN), type: 'DOUBLE' },
        { name: 'id', data: col('id'), type: 'STRING' },
        { name: 'age', data: col('age'), type: 'FLOAT', nullable: true },
        { name: 'plan', data: col('plan'), type: 'STRING', nullable: true },
      ],
      rowGroupSize: 150,
    });
    const q = await score(new Uint8Array(file), 'application/vnd.apache.parquet');
    expect(q.done).toMatchObject({ status: 'completed', ignoredColumns: ['target'], chunks: { total: 3 }, requestCounts: { completed: rows.length } });
    expectLabels(q.labels);
  });

  it('a CSV or Parquet file without a required column is a 400 naming it', async () => {
    const res = await submit(columnCsv(rows.slice(0, 5), ['id', 'age', 'plan', 'target']), 'text/csv');
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error.code).toBe('bad_request');
    expect(body.error.message).toBe('the CSV header has no column "income", "city" (the model\'s inputs)');
    const file = parquetWriteBuffer({ columnData: [{ name: 'age', data: Float32Array.of(1, 2), type: 'FLOAT' }] });
    const pq = await submit(new Uint8Array(file), 'application/vnd.apache.parquet');
    expect(pq.status).toBe(400);
    expect((await pq.json()).error.message).toMatch(/^the Parquet file has no column "income", "plan", "city" \(the model's inputs\)/);
  });
});

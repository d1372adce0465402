// What a compression is measured on: the `samples` a request uploads (multipart: JSONL, CSV or
// Parquet rows, parsed as the batch path parses them, a column-input model fed by column), stored in
// the artifact store and bounded in bytes and rows; without samples or a dataset, the model's
// training dataset from its lineage; generated inputs only when neither exists. The report says which.
import { QueueEvents } from 'bullmq';
import fs from 'node:fs';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { buildColumnModel, columnCsv, columnRows } from '../fixtures/column-models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const MAX_ROWS = 600;
let p: TestPlatform;
let events: QueueEvents;

/** `n` rows of 8 seeded values in [-1, 1] for the MLP's input `x`. */
function mlpRows(n: number, seed = 5): number[][] {
  let s = seed;
  return Array.from({ length: n }, () => Array.from({ length: 8 }, () => Number((((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1).toFixed(4))));
}
const jsonl = (rows: number[][]) => rows.map((x, i) => JSON.stringify({ id: i, input: x })).join('\n') + '\n';

function form(request: Record<string, unknown>, samples?: { data: Uint8Array | string; name: string; type: string }): FormData {
  const f = new FormData();
  f.append('request', JSON.stringify({ allowSlower: true, ...request }));
  if (samples) f.append('samples', new Blob([samples.data as BlobPart], { type: samples.type }), samples.name);
  return f;
}

async function run(body: FormData | Record<string, unknown>) {
  const res = body instanceof FormData ? await fetch(`${p.url}/v1/jobs/compress`, { method: 'POST', body }) : await postJson(`${p.url}/v1/jobs/compress`, body);
  const json = await res.json();
  if (res.status !== 202) return { status: res.status, error: json.error as { code: string; message: string } };
  const job = (await p.deps.queues.queue('compress').getJob(json.id))!;
  try {
    return { status: 202, id: json.id as string, data: job.data, result: await job.waitUntilFinished(events, 180_000) };
  } catch (e) {
    return { status: 202, id: json.id as string, data: job.data, failed: (JSON.parse((e as Error).message) as { message: string }).message };
  }
}

/** Files under the store's compress/ folder (the uploads of every request so far). */
const storedUploads = () => {
  const dir = path.join(p.cfg.MODELQ_DATA_DIR, 'compress');
  return fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).filter((f) => String(f).includes('.')) : [];
};

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_COMPRESS_SAMPLES_MAX_ROWS: String(MAX_ROWS), MODELQ_COMPRESS_SAMPLES_MAX_MB: '1' } });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  expect((await uploadModel(p.url, 'mlp', buildMlp({ sizes: [8, 32, 4], seed: 3 }))).status).toBe(201);
  expect((await uploadModel(p.url, 'cols', buildColumnModel())).status).toBe(201);
});
afterAll(async () => {
  await events?.close();
  await p?.stop();
});

describe('compression measured on uploaded samples', () => {
  it('JSONL samples: agreement on their 300 rows, the file in the store and only its key in the job', async () => {
    const r = await run(
      form({ model: 'mlp', method: 'fp16', registerAs: 'mlp-fp16' }, { data: jsonl(mlpRows(300)), name: 'rows.jsonl', type: 'application/x-ndjson' }),
    );
    expect(r.status, JSON.stringify(r.error)).toBe(202);
    expect(r.failed).toBeUndefined();
    expect(r.result.report.verdict).toMatchObject({
      data: 'samples',
      rows: 300,
      passed: true,
      source: expect.stringMatching(/samples "rows\.jsonl" \(jsonl, 300 rows\)/),
    });
    expect(r.data.samples).toEqual({ key: `compress/${r.id}/samples.jsonl`, format: 'jsonl', bytes: expect.any(Number), rows: 300, filename: 'rows.jsonl' });
    expect(JSON.stringify(r.data).length).toBeLessThan(2000); // the rows are not in Redis
    expect(await p.deps.store.stat(r.data.samples.key)).toMatchObject({ bytes: r.data.samples.bytes });
  });

  it('Parquet samples of a column-input model, fed by column (nulls are missing values)', async () => {
    const rows = columnRows(200);
    const col = (k: 'age' | 'income' | 'plan' | 'city') => rows.map((r) => r[k]);
    const file = parquetWriteBuffer({
      columnData: [
        { name: 'age', data: Float64Array.from(col('age'), (v) => (v === null ? Number.NaN : Number(v))), type: 'DOUBLE' },
        { name: 'income', data: col('income'), type: 'FLOAT', nullable: true },
        { name: 'plan', data: col('plan'), type: 'STRING', nullable: true },
        { name: 'city', data: col('city'), type: 'STRING', nullable: true },
      ],
      rowGroupSize: 64,
    });
    const r = await run(
      form({ model: 'cols', method: 'fp16', registerAs: 'cols-fp16' }, { data: new Uint8Array(file), name: 'rows.parquet', type: 'application/octet-stream' }),
    );
    expect(r.status, JSON.stringify(r.error)).toBe(202);
    expect(r.failed).toBeUndefined();
    expect(r.result.report.verdict).toMatchObject({ data: 'samples', rows: 200, source: expect.stringContaining('parquet, 200 rows') });
    expect(r.result.report.verdict.outputs.map((o: { name: string }) => o.name)).toContain('probabilities');
  });

  it('CSV samples of the column-input model: the named columns feed the inputs', async () => {
    const csv = columnCsv(columnRows(120, 9), ['city', 'age', 'plan', 'income', 'target']);
    const r = await run(form({ model: 'cols', method: 'fp16', registerAs: 'cols-fp16-csv' }, { data: csv, name: 'rows.csv', type: 'text/csv' }));
    expect(r.failed).toBeUndefined();
    expect(r.result.report.verdict).toMatchObject({ data: 'samples', rows: 120 });
  });

  it('a row the batch path would refuse fails the job naming the row', async () => {
    const text = jsonl(mlpRows(3)).split('\n');
    text[1] = JSON.stringify({ input: [1, 2, 3] });
    const r = await run(
      form({ model: 'mlp', method: 'fp16', registerAs: 'mlp-bad' }, { data: text.join('\n'), name: 'rows.jsonl', type: 'application/x-ndjson' }),
    );
    expect(r.failed).toMatch(/samples: row 2: .*input/);
  });

  it('bounded: more rows than MODELQ_COMPRESS_SAMPLES_MAX_ROWS or bytes than MODELQ_COMPRESS_SAMPLES_MAX_MB is a 400, and nothing stays stored', async () => {
    const before = storedUploads().length;
    const many = await run(form({ model: 'mlp', method: 'fp16' }, { data: jsonl(mlpRows(MAX_ROWS + 1)), name: 'rows.jsonl', type: 'application/x-ndjson' }));
    expect(many.status).toBe(400);
    expect(many.error!.message).toMatch(new RegExp(`more than ${MAX_ROWS} rows \\(MODELQ_COMPRESS_SAMPLES_MAX_ROWS\\)`));
    const big = await run(form({ model: 'mlp', method: 'fp16' }, { data: 'x'.repeat(1024 * 1024 + 1), name: 'rows.csv', type: 'text/csv' }));
    expect(big.status).toBe(400);
    expect(big.error!.message).toMatch(/exceeds MODELQ_COMPRESS_SAMPLES_MAX_MB \(1 MiB\)/);
    expect(storedUploads().length).toBe(before);
  });

  it('refuses samples with a dataset, a request field after the file, and a request that is not JSON', async () => {
    const both = await run(
      form({ model: 'mlp', method: 'fp16', dataset: 'ds_00000000000000000000' }, { data: jsonl(mlpRows(5)), name: 'a.jsonl', type: 'application/x-ndjson' }),
    );
    expect([both.status, both.error?.message]).toEqual([400, 'samples: give a dataset or samples to measure on, not both']);
    const late = new FormData();
    late.append('samples', new Blob([jsonl(mlpRows(5))]), 'a.jsonl');
    late.append('request', JSON.stringify({ model: 'mlp', method: 'fp16' }));
    expect((await run(late)).error?.message).toMatch(/"request" field must come before the "samples" file/);
    const bad = new FormData();
    bad.append('request', '{model');
    expect((await run(bad)).error?.message).toMatch(/request: not valid JSON/);
  });
});

describe('compression without samples or a dataset', () => {
  it('a trained model is measured on its training dataset (from its lineage); an uploaded one on generated inputs', async () => {
    const csv = ['a,b,c,kind', ...mlpRows(240, 11).map((x) => `${x[0]},${x[1]},${x[2]},${x[0]! + x[1]! > 0 ? 'up' : 'down'}`)].join('\n') + '\n';
    const dsRes = await fetch(`${p.url}/v1/datasets?format=csv&name=lineage`, { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
    expect(dsRes.status).toBe(201);
    const ds = (await dsRes.json()).id as string;
    const train = await postJson(`${p.url}/v1/jobs/train`, {
      dataset: ds,
      target: 'kind',
      model: { type: 'mlp', hidden: [16] },
      epochs: 5,
      registerAs: 'trained',
    });
    expect(train.status).toBe(202);
    const trainId = (await train.json()).id;
    const done = await until(
      async () => {
        const j = await (await fetch(`${p.url}/v1/jobs/${trainId}`)).json();
        return ['completed', 'failed'].includes(j.state) ? j : null;
      },
      'training',
      180_000,
    );
    expect(done.state, JSON.stringify(done.failedReason ?? done.error)).toBe('completed');

    const r = await run({ model: 'trained', method: 'fp16', registerAs: 'trained-fp16', tolerance: { top1: 0.9, cosine: 0.99 } });
    expect(r.failed).toBeUndefined();
    expect(r.data.dataset).toMatchObject({ id: ds, fromLineage: true });
    expect(r.result.report.verdict).toMatchObject({
      data: 'dataset',
      rows: 240,
      source: expect.stringContaining(`dataset ${ds} (the model's training dataset, from its lineage)`),
    });
    expect(r.result.report.dataset).toMatchObject({ id: ds, rows: 240, target: 'kind' });

    const g = await run({ model: 'mlp', method: 'fp16', registerAs: 'mlp-fp16-generated' });
    expect(g.failed).toBeUndefined();
    expect(g.data.dataset).toBeUndefined();
    expect(g.result.report.verdict).toMatchObject({ data: 'generated', rows: 256, source: expect.stringMatching(/^generated inputs/) });
  });
});

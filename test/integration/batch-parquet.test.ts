// Parquet in and out: a list column per input or scalar feature columns, row groups scored as
// chunks, the output read back as Parquet equal to a direct onnxruntime run, in order, with ids;
// files that are not Parquet or do not fit the model are refused naming the problem, leaving nothing.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 8;
const model = buildMlp({ sizes: [F, 16, 3], seed: 21 });

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'pq', model)).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const PARQUET = 'application/vnd.apache.parquet';
const submit = (body: Uint8Array | string, query: string, type = PARQUET) =>
  fetch(`${p.url}/v1/batches?${query}`, { method: 'POST', body: typeof body === 'string' ? body : Buffer.from(body), headers: { 'content-type': type } });

async function waitDone(id: string) {
  return until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    300_000,
  );
}

/** The output as Parquet, checked row by row against a direct run. */
async function expectParquetOutput(id: string, x: Float32Array, n: number, ids: (i: number) => unknown) {
  const res = await fetch(`${p.url}/v1/batches/${id}/output?format=parquet`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe(PARQUET);
  const out = await parquetReadObjects({ file: await res.arrayBuffer() });
  expect(out).toHaveLength(n);
  const expected = (await directRun(model, { input: { data: x, dims: [n, F] } })).output!;
  out.forEach((o, i) => {
    if (Number(o.row) !== i || o.id !== ids(i)) throw new Error(`output row ${i} is row ${o.row} id ${o.id}`);
    for (let j = 0; j < 3; j++)
      if (Math.abs(o.output[j] - expected[i * 3 + j]!) > 1e-5) throw new Error(`row ${i} output ${j}: ${o.output[j]} vs ${expected[i * 3 + j]}`);
  });
}

describe('Parquet batches', () => {
  it('scores a 100,000-row file with a list column per input, row groups as chunks, to a Parquet output', async () => {
    const n = 100_000;
    const x = rows(n, F, 9);
    const file = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Array.from({ length: n }, (_, i) => `p${i}`) },
        { name: 'input', data: Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * F, (i + 1) * F))) },
      ],
      schema: [
        { name: 'root', num_children: 2 },
        { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        { name: 'input', repetition_type: 'REQUIRED', num_children: 1, converted_type: 'LIST' },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'FLOAT', repetition_type: 'REQUIRED' },
      ],
      rowGroupSize: 10_000,
    });
    const res = await submit(new Uint8Array(file), 'model=pq');
    expect(res.status).toBe(202);
    const accepted = await res.json();
    expect(accepted).toMatchObject({ format: 'parquet', chunks: { total: 10 }, requestCounts: { total: n } });
    expect(await waitDone(accepted.id)).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    await expectParquetOutput(accepted.id, x, n, (i) => `p${i}`);
  });

  it('scores gzip-compressed scalar feature columns in order, the format inferred from a multipart .parquet file name', async () => {
    const n = 5000;
    const x = rows(n, F, 10);
    // Gzip pages: a codec hyparquet does not read by itself (hyparquet-compressors does).
    const file = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Array.from({ length: n }, (_, i) => i), type: 'DOUBLE' },
        ...Array.from({ length: F }, (_, j) => ({ name: `f${j}`, data: Float32Array.from({ length: n }, (_, i) => x[i * F + j]!), type: 'FLOAT' as const })),
      ],
      rowGroupSize: 1500,
      codec: 'GZIP',
      compressors: { GZIP: (bytes: Uint8Array) => new Uint8Array(zlib.gzipSync(bytes)) },
    });
    const form = new FormData();
    form.append('model', 'pq');
    form.append('file', new Blob([new Uint8Array(file)]), 'features.parquet');
    const res = await fetch(`${p.url}/v1/batches`, { method: 'POST', body: form });
    expect(res.status).toBe(202);
    const accepted = await res.json();
    expect(accepted).toMatchObject({ format: 'parquet', chunks: { total: 4 } });
    expect(await waitDone(accepted.id)).toMatchObject({ status: 'completed', requestCounts: { completed: n, failed: 0 } });
    await expectParquetOutput(accepted.id, x, n, (i) => i);
  });

  it('refuses a body that is not Parquet and a file whose columns do not fit, naming the problem and leaving nothing', async () => {
    const records = async () => (await p.redis.keys(`${keyPrefix(p.cfg)}:records:batch:*`)).length;
    const dir = path.join(p.cfg.MODELQ_DATA_DIR, 'batches');
    const stored = () => (fs.existsSync(dir) ? fs.readdirSync(dir).flatMap((b) => fs.readdirSync(path.join(dir, b)).map((f) => `${b}/${f}`)) : []);
    const before = { records: await records(), files: stored() };
    const notParquet = await submit('{"input":[1,2,3,4,5,6,7,8]}\n', 'model=pq');
    expect(notParquet.status).toBe(400);
    expect((await notParquet.json()).error.message).toMatch(/not a Parquet file/);
    const wrongColumn = parquetWriteBuffer({ columnData: [{ name: 'features', data: Array.from({ length: 10 }, () => 'x'), type: 'STRING' }] });
    const wrong = await submit(new Uint8Array(wrongColumn), 'model=pq&format=parquet');
    expect(wrong.status).toBe(400);
    expect((await wrong.json()).error.message).toMatch(/column "features" is STRING/);
    const fewColumns = parquetWriteBuffer({
      columnData: [
        { name: 'a', data: [1, 2], type: 'DOUBLE' },
        { name: 'b', data: [3, 4], type: 'DOUBLE' },
      ],
    });
    const few = await submit(new Uint8Array(fewColumns), 'model=pq');
    expect(few.status).toBe(400);
    expect((await few.json()).error.message).toMatch(/2 feature columns, the model's input "input" takes 8/);
    expect(await records()).toBe(before.records);
    expect(stored()).toEqual(before.files);
  });
});

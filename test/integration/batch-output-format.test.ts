// Uploaded batches whose parts the workers write in a format of their own (`outputFormat`): CSV
// and Parquet encoded on the engine threads, listed in a manifest under the batch's prefix, and a
// download in that format sending the parts as they are; JSONL downloads unchanged.
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 8;
const model = buildMlp({ sizes: [F, 16, 3], seed: 23 });

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'fmt', model)).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

async function waitDone(id: string) {
  return until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    120_000,
  );
}

const close = (got: ArrayLike<unknown>, want: Float32Array, r: number) => Array.from(got).every((v, j) => Math.abs(Number(v) - want[r * 3 + j]!) < 1e-5);

describe('uploads with an output format', () => {
  it('writes Parquet parts on the workers; the Parquet download is those parts joined, the JSONL one is unchanged', async () => {
    const n = 2500;
    const x = rows(n, F, 5);
    const bad = 1234;
    const body = Array.from({ length: n }, (_, i) =>
      i === bad ? `{"id":"r${i}","input":[1,2]}` : JSON.stringify({ id: `r${i}`, input: Array.from(x.subarray(i * F, (i + 1) * F)) }),
    ).join('\n');
    const res = await fetch(`${p.url}/v1/batches?model=fmt&chunkRows=1000&outputFormat=parquet`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    const done = await waitDone(id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n - 1, failed: 1 } });
    const want = (await directRun(model, { input: { data: x, dims: [n, F] } })).output!;

    const manifest = JSON.parse((await p.deps.store.get(`batches/${id}/parts/_manifest.json`)).toString());
    expect(manifest).toMatchObject({ rows: n, errors: 1 });
    expect(manifest.parts.map((q: { uri: string }) => q.uri)).toEqual([0, 1, 2].map((i) => `store:batches/${id}/parts/part-0000${i}.parquet`));

    const whole = Buffer.from(await (await fetch(`${p.url}/v1/batches/${id}/output?format=parquet`)).arrayBuffer());
    const out = await parquetReadObjects({ file: whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.length) as ArrayBuffer });
    expect(out).toHaveLength(n - 1);
    out.forEach((o, k) => {
      const r = k < bad ? k : k + 1;
      if (Number(o.row) !== r || o.id !== `r${r}` || !close(o.output as number[], want, r))
        throw new Error(`row ${r}: ${JSON.stringify(o, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    });

    const lines = (await (await fetch(`${p.url}/v1/batches/${id}/output`)).text()).trim().split('\n');
    expect(lines).toHaveLength(n - 1);
    expect(JSON.parse(lines[bad]!).row).toBe(bad + 1);
    const errors = (await (await fetch(`${p.url}/v1/batches/${id}/errors`)).text()).trim().split('\n');
    expect(errors.map((l) => JSON.parse(l).row)).toEqual([bad]);
  });

  it('writes CSV parts from a CSV upload; the CSV download has one header and every row in order', async () => {
    const n = 1500;
    const x = rows(n, F, 6);
    let csv = `id,${Array.from({ length: F }, (_, j) => `f${j}`).join(',')}\n`;
    for (let i = 0; i < n; i++) csv += `c${i},${Array.from(x.subarray(i * F, (i + 1) * F)).join(',')}\n`;
    const res = await fetch(`${p.url}/v1/batches?model=fmt&chunkRows=400&outputFormat=csv`, {
      method: 'POST',
      body: csv,
      headers: { 'content-type': 'text/csv' },
    });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    expect(await waitDone(id)).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    const want = (await directRun(model, { input: { data: x, dims: [n, F] } })).output!;
    const text = (await (await fetch(`${p.url}/v1/batches/${id}/output?format=csv`)).text()).trim().split('\n');
    expect(text[0]).toBe('row,id,output_0,output_1,output_2');
    expect(text).toHaveLength(n + 1);
    text.slice(1).forEach((l, r) => {
      const [row, rid, ...vals] = l.split(',');
      if (Number(row) !== r || rid !== `c${r}` || !close(vals.map(Number), want, r)) throw new Error(`row ${r}: ${l}`);
    });
  });

  it('refuses an unknown output format', async () => {
    const res = await fetch(`${p.url}/v1/batches?model=fmt&outputFormat=xml`, {
      method: 'POST',
      body: '{"input":[1]}',
      headers: { 'content-type': 'application/x-ndjson' },
    });
    expect(res.status).toBe(400);
  });
});

// A batch file's format is recognised from its bytes, not assumed: a CSV posted the plain curl way
// (no content type, no format) is scored as CSV; a declared format the bytes do not match is a 400
// naming both, and nothing is stored; a batch whose every row fails ends `failed`, saying why.
import fs from 'node:fs';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 4;

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'fmt', buildMlp({ sizes: [F, 8, 2], seed: 3 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const header = ['id', ...Array.from({ length: F }, (_, j) => `f${j}`)].join(',');
const csv = (n: number) =>
  [header, ...Array.from({ length: n }, (_, i) => [`r${i}`, ...Array.from({ length: F }, (_, j) => (i + j) / 10)].join(','))].join('\n') + '\n';
const jsonl = (n: number) =>
  Array.from({ length: n }, (_, i) => JSON.stringify({ id: `r${i}`, input: Array.from({ length: F }, (_, j) => (i + j) / 10) })).join('\n') + '\n';

async function waitDone(id: string) {
  return until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    60_000,
  );
}

/** Batch records and stored batch files, to show that a refused upload leaves nothing. */
async function leftovers() {
  const dir = path.join(p.cfg.MODELQ_DATA_DIR, 'batches');
  return {
    records: await p.redis.zcard(`${keyPrefix(p.cfg)}:records:batches`),
    files: fs.existsSync(dir) ? fs.readdirSync(dir).length : 0,
  };
}

describe('batch formats are recognised from the bytes', () => {
  it('scores a CSV posted without a content type or format (the README curl way) as CSV, header not counted', async () => {
    // No content-type header at all, and curl --data-binary's default, form-urlencoded.
    for (const headers of [{}, { 'content-type': 'application/x-www-form-urlencoded' }] as Record<string, string>[]) {
      const res = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: Buffer.from(csv(30)), headers });
      expect(res.status).toBe(202);
      const accepted = await res.json();
      expect(accepted).toMatchObject({ format: 'csv', requestCounts: { total: 30 } });
      expect(await waitDone(accepted.id)).toMatchObject({ status: 'completed', requestCounts: { total: 30, completed: 30, failed: 0 } });
      const out = (await (await fetch(`${p.url}/v1/batches/${accepted.id}/output`)).text()).trim().split('\n');
      expect(JSON.parse(out[29]!)).toMatchObject({ row: 29, id: 'r29' });
    }
  });

  it('recognises JSONL and Parquet without a declaration too', async () => {
    const j = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: Buffer.from(jsonl(5)) });
    expect(j.status).toBe(202);
    expect(await j.json()).toMatchObject({ format: 'jsonl', requestCounts: { total: 5 } });
    const file = parquetWriteBuffer({ columnData: Array.from({ length: F }, (_, k) => ({ name: `f${k}`, data: [1, 2, 3], type: 'DOUBLE' as const })) });
    const q = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: Buffer.from(file) });
    expect(q.status).toBe(202);
    expect(await q.json()).toMatchObject({ format: 'parquet', requestCounts: { total: 3 } });
  });

  it('a JSONL file declared as CSV is a 400 naming both, however it was declared, and leaves nothing', async () => {
    const before = await leftovers();
    const byQuery = await fetch(`${p.url}/v1/batches?model=fmt&format=csv`, { method: 'POST', body: jsonl(5) });
    expect(byQuery.status).toBe(400);
    expect((await byQuery.json()).error.message).toMatch(/declared CSV \(format=csv\) but its bytes are JSONL.*format=jsonl/);
    const byType = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: jsonl(5), headers: { 'content-type': 'text/csv' } });
    expect(byType.status).toBe(400);
    expect((await byType.json()).error.message).toMatch(/declared CSV \(content-type text\/csv\) but its bytes are JSONL/);
    const form = new FormData();
    form.append('model', 'fmt');
    form.append('file', new Blob([jsonl(5)]), 'rows.csv');
    const byName = await fetch(`${p.url}/v1/batches`, { method: 'POST', body: form });
    expect(byName.status).toBe(400);
    expect((await byName.json()).error.message).toMatch(/declared CSV \(file name "rows.csv"\) but its bytes are JSONL/);
    // And the other way round, and bytes that are none of the three.
    const csvAsJsonl = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: csv(3), headers: { 'content-type': 'application/x-ndjson' } });
    expect(csvAsJsonl.status).toBe(400);
    expect((await csvAsJsonl.json()).error.message).toMatch(/declared JSONL \(content-type application\/x-ndjson\) but its bytes are CSV/);
    const array = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: JSON.stringify([{ input: [1, 2, 3, 4] }]) });
    expect(array.status).toBe(400);
    expect((await array.json()).error.message).toMatch(/a JSON array; batches take JSONL/);
    const gz = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: Buffer.from([0x1f, 0x8b, 8, 0, 0, 0]) });
    expect(gz.status).toBe(400);
    expect((await gz.json()).error.message).toMatch(/gzip-compressed/);
    expect(await leftovers()).toEqual(before);
  });

  it('a batch in which every row fails ends failed, quoting the first errors; one with some failures completes', async () => {
    const bad = ['{"input":[1,2]}', '{not json', '{"other":1}', '{"input":[1,2]}'].join('\n');
    const res = await fetch(`${p.url}/v1/batches?model=fmt&chunkRows=2`, { method: 'POST', body: bad });
    expect(res.status).toBe(202);
    const v = await waitDone((await res.json()).id);
    expect(v).toMatchObject({ status: 'failed', requestCounts: { total: 4, completed: 0, failed: 4 } });
    expect(v.error).toMatch(/^every row failed \(4 of 4\); the first errors: row 0: .*has 2 elements.*; row 1: .*not valid JSON/);
    // The rows' errors are still there to read.
    expect((await (await fetch(`${p.url}/v1/batches/${v.id}/errors`)).text()).trim().split('\n')).toHaveLength(4);

    const some = await fetch(`${p.url}/v1/batches?model=fmt`, { method: 'POST', body: `${jsonl(3)}{not json\n` });
    expect(await waitDone((await some.json()).id)).toMatchObject({ status: 'completed', requestCounts: { total: 4, completed: 3, failed: 1 } });
  });
});

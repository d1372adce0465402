// Batches by reference against a real S3-protocol server (s3rver): a prefix of Parquet files and a
// prefix of JSONL files scored straight from the bucket into an output prefix of parts plus
// `_manifest.json`, rows equal to a direct onnxruntime run per file (ids, order, error rows); URIs
// outside the tenant's roots refused before any request reaches the server; missing, unreadable
// and corrupt inputs named in the error; nothing left looking complete by a failed batch.
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3Store } from '../../core/storage/s3-store.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows } from '../fixtures/models.ts';
import { LAKE_BUCKET as BUCKET, startLake, type Lake } from '../helpers/lake.ts';
import { postJson, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import type { S3Server } from '../unit/core/storage/s3-server.ts';

const F = 6;
const model = buildMlp({ sizes: [F, 16, 3], seed: 31 });
let world: Lake | undefined;
let s3: S3Server;
let p: TestPlatform;
let lake: S3Store;

beforeAll(async () => {
  world = await startLake({ roots: [`s3://${BUCKET}/acme/`, 's3://no-such-bucket/acme/', 'store:tenants/acme/'], workers: 1 });
  ({ s3, p, lake } = world);
  expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
  // The first test needs a batch that waits for its worker.
  const w = p.workers[0]!;
  w.child.kill('SIGTERM');
  await w.exited;
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

const submit = (body: unknown) => postJson(`${p.url}/v1/batches`, body);

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

/** A running worker (the first test starts one late on purpose). */
async function ensureWorker() {
  if (!p.workers.some((w) => w.child.exitCode === null && w.child.signalCode === null)) await p.addWorker();
}

const text = async (key: string) => (await lake.get(key)).toString('utf8');

interface Manifest {
  rows: number;
  errors: number;
  model: { name: string; version: number };
  parts: {
    index: number;
    uri: string;
    sha256: string;
    bytes: number;
    rows: number;
    errors: number;
    errorsUri: string;
    source: { uri: string; firstRow: number };
  }[];
}
const keyOf = (uri: string) => uri.replace(`s3://${BUCKET}/`, '');

/** The expected outputs of one file's rows (a direct run). */
async function expected(x: Float32Array, n: number) {
  return (await directRun(model, { input: { data: x, dims: [n, F] } })).output!;
}

const close = (a: number[], e: Float32Array, row: number) => a.every((v, j) => Math.abs(v - e[row * 3 + j]!) < 1e-5) && a.length === 3;

describe('batches by reference', () => {
  it('fails a batch whose object is gone by the time it is read, naming it, and writes no manifest', async () => {
    // No worker runs yet: the object is removed between submit and scoring.
    await lake.put('acme/gone/a.jsonl', '{"id":1,"input":[1,2,3,4,5,6]}\n');
    const res = await submit({ model: 'm', input: { uri: `s3://${BUCKET}/acme/gone/` }, output: { uri: `s3://${BUCKET}/acme/out-gone/` } });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    await lake.delete('acme/gone/a.jsonl');
    await ensureWorker();
    const done = await waitDone(id);
    expect(done.status).toBe('failed');
    expect(done.error).toContain(`s3://${BUCKET}/acme/gone/a.jsonl`);
    expect(await lake.stat('acme/out-gone/_manifest.json')).toBeNull();
  });

  it('scores a prefix of 5 Parquet files into Parquet parts and a manifest, each file in order with its ids', async () => {
    const files = [700, 250, 1, 513, 300].map((n, f) => ({ n, x: rows(n, F, 40 + f) }));
    for (const [f, { n, x }] of files.entries()) {
      const buf = parquetWriteBuffer({
        columnData: [
          { name: 'id', data: Array.from({ length: n }, (_, i) => `f${f}-${i}`) },
          { name: 'input', data: Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * F, (i + 1) * F))) },
        ],
        schema: [
          { name: 'root', num_children: 2 },
          { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
          { name: 'input', repetition_type: 'REQUIRED', num_children: 1, converted_type: 'LIST' },
          { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
          { name: 'element', type: 'FLOAT', repetition_type: 'REQUIRED' },
        ],
        rowGroupSize: 200,
      });
      await lake.put(`acme/pq/part-${f}.parquet`, new Uint8Array(buf));
    }
    await lake.put('acme/pq/_SUCCESS', 'x'); // hidden: not an input
    await ensureWorker();
    const res = await submit({ model: 'm', input: { uri: `s3://${BUCKET}/acme/pq/` }, output: { uri: `s3://${BUCKET}/acme/out-pq`, format: 'parquet' } });
    expect(res.status).toBe(202);
    const accepted = await res.json();
    const groups = files.reduce((g, f) => g + Math.ceil(f.n / 200), 0);
    const total = files.reduce((t, f) => t + f.n, 0);
    expect(accepted).toMatchObject({ format: 'parquet', chunks: { total: groups }, requestCounts: { total } });
    const done = await waitDone(accepted.id);
    expect(done.error ?? '').toBe('');
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total, completed: total, failed: 0 } });

    const manifest = JSON.parse(await text('acme/out-pq/_manifest.json')) as Manifest;
    expect(manifest).toMatchObject({ rows: total, errors: 0, model: { name: 'm', version: 1 } });
    expect(manifest.parts.map((x) => keyOf(x.uri))).toEqual(Array.from({ length: groups }, (_, i) => `acme/out-pq/part-${String(i).padStart(5, '0')}.parquet`));
    const listed = (await lake.list('acme/out-pq/', 1000)).map((o) => o.key).filter((k) => !k.includes('/_'));
    expect(listed).toEqual(manifest.parts.map((x) => keyOf(x.uri)));
    // Each file's rows, part by part in manifest order, equal a direct run of that file.
    for (const [f, { n, x }] of files.entries()) {
      const e = await expected(x, n);
      const parts = manifest.parts.filter((q) => q.source.uri === `s3://${BUCKET}/acme/pq/part-${f}.parquet`);
      let next = 0;
      for (const part of parts) {
        const bytes = await lake.get(keyOf(part.uri));
        expect(part.bytes).toBe(bytes.length);
        expect(part.source.firstRow).toBe(next);
        const out = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer });
        expect(out).toHaveLength(part.rows);
        out.forEach((o, i) => {
          if (Number(o.row) !== i || o.id !== `f${f}-${next + i}` || !close(o.output, e, next + i))
            throw new Error(`file ${f} row ${next + i}: ${JSON.stringify(o)}`);
        });
        next += part.rows;
      }
      expect(next).toBe(n);
    }
    // The download route still answers with every row; as Parquet, the parts joined as they are (not converted).
    const lines = (await (await fetch(`${p.url}/v1/batches/${accepted.id}/output`)).text()).trim().split('\n');
    expect(lines).toHaveLength(total);
    const whole = Buffer.from(await (await fetch(`${p.url}/v1/batches/${accepted.id}/output?format=parquet`)).arrayBuffer());
    const all = await parquetReadObjects({ file: whole.buffer.slice(whole.byteOffset, whole.byteOffset + whole.length) as ArrayBuffer });
    const fromParts: unknown[] = [];
    for (const part of manifest.parts) {
      const bytes = await lake.get(keyOf(part.uri));
      fromParts.push(...(await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer })));
    }
    expect(all).toHaveLength(total);
    expect(all).toEqual(fromParts);
  });

  it('scores a prefix of 3 JSONL files split in byte ranges: every row once, in order, bad rows as error rows', async () => {
    const files = [180, 1, 95].map((n, f) => ({ n, x: rows(n, F, 60 + f) }));
    const bad = new Set(['j0-7', 'j2-94', 'j0-179']);
    for (const [f, { n, x }] of files.entries()) {
      let body = '';
      for (let i = 0; i < n; i++) {
        const id = `j${f}-${i}`;
        const input = bad.has(id) ? [1, 2] : Array.from(x.subarray(i * F, (i + 1) * F));
        body += `${JSON.stringify({ id, input })}\n`;
      }
      await lake.put(`acme/jl/${'abc'[f]}.jsonl`, f === 2 ? body.trimEnd() : body); // the last without a final newline
    }
    await ensureWorker();
    const res = await submit({
      model: 'm',
      input: { uri: `s3://${BUCKET}/acme/jl/*.jsonl` },
      output: { uri: `s3://${BUCKET}/acme/out-jl/` },
      chunkBytes: 1024,
    });
    expect(res.status).toBe(202);
    const accepted = await res.json();
    expect(accepted.chunks.total).toBeGreaterThan(10);
    const total = files.reduce((t, f) => t + f.n, 0);
    const done = await waitDone(accepted.id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total, completed: total - bad.size, failed: bad.size } });

    const manifest = JSON.parse(await text('acme/out-jl/_manifest.json')) as Manifest;
    expect(manifest).toMatchObject({ rows: total, errors: bad.size });
    for (const [f, { n, x }] of files.entries()) {
      const e = await expected(x, n);
      const parts = manifest.parts.filter((q) => q.source.uri === `s3://${BUCKET}/acme/jl/${'abc'[f]}.jsonl`);
      const seen: string[] = [];
      for (const part of parts) {
        const out = (await text(keyOf(part.uri)))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l));
        const errs = (await text(keyOf(part.errorsUri)))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l));
        expect(out.length + errs.length).toBe(part.rows);
        expect(errs.length).toBe(part.errors);
        // Outputs and errors together, by row within the part, are the file's rows in order.
        for (const o of [...out, ...errs].sort((a, b) => a.row - b.row)) {
          const row = part.source.firstRow + o.row;
          expect(o.id).toBe(`j${f}-${row}`);
          if (o.error) expect(bad.has(o.id)).toBe(true);
          else if (!close(o.outputs.output, e, row)) throw new Error(`file ${f} row ${row} differs`);
          seen.push(o.id);
        }
      }
      expect(seen).toEqual(Array.from({ length: n }, (_, i) => `j${f}-${i}`));
    }
    const errors = (await (await fetch(`${p.url}/v1/batches/${accepted.id}/errors`)).text()).trim().split('\n');
    expect(errors.map((l) => JSON.parse(l).id).sort()).toEqual([...bad].sort());
  });

  it('refuses URIs outside the tenant roots with 403 before any request reaches the store', async () => {
    const before = s3.requests.length;
    const cases = [
      { input: { uri: `s3://${BUCKET}/other/` }, output: { uri: `s3://${BUCKET}/acme/o/` } },
      { input: { uri: `s3://${BUCKET}/acme2/x.jsonl` }, output: { uri: `s3://${BUCKET}/acme/o/` } },
      { input: { uri: `s3://platform/acme/` }, output: { uri: `s3://${BUCKET}/acme/o/` } },
      { input: { uri: [`s3://${BUCKET}/acme/jl/`, `s3://${BUCKET}/a*`] }, output: { uri: `s3://${BUCKET}/acme/o/` } },
      { input: { uri: `s3://${BUCKET}/acme/jl/` }, output: { uri: `s3://${BUCKET}/elsewhere/` } },
      { input: { uri: 'store:models/' }, output: { uri: `s3://${BUCKET}/acme/o/` } },
    ];
    for (const c of cases) {
      const res = await submit({ model: 'm', ...c });
      expect(res.status, JSON.stringify(c)).toBe(403);
      expect((await res.json()).error.code).toBe('forbidden');
    }
    for (const uri of ['http://evil.example/acme/', `s3://${BUCKET}/acme/../other/`, 'file:///etc/passwd']) {
      const res = await submit({ model: 'm', input: { uri }, output: { uri: `s3://${BUCKET}/acme/o/` } });
      expect(res.status, uri).toBe(400);
    }
    expect(s3.requests.slice(before)).toEqual([]);
  });

  it('names a missing prefix, an unreadable bucket and a corrupt Parquet footer at submit', async () => {
    const out = { uri: `s3://${BUCKET}/acme/o/` };
    const missing = await submit({ model: 'm', input: { uri: `s3://${BUCKET}/acme/nothing/` }, output: out });
    expect(missing.status).toBe(400);
    expect((await missing.json()).error.message).toContain(`no objects at s3://${BUCKET}/acme/nothing/`);

    await lake.put('acme/corrupt/a.parquet', Buffer.concat([Buffer.from('PAR1'), Buffer.alloc(100, 7), Buffer.from([200, 0, 0, 0]), Buffer.from('PAR1')]));
    const corrupt = await submit({ model: 'm', input: { uri: `s3://${BUCKET}/acme/corrupt/` }, output: out });
    expect(corrupt.status).toBe(400);
    expect((await corrupt.json()).error.message).toContain(`s3://${BUCKET}/acme/corrupt/a.parquet`);

    const noBucket = await submit({ model: 'm', input: { uri: 's3://no-such-bucket/acme/x/' }, output: out });
    expect(noBucket.status).toBe(400);
    expect((await noBucket.json()).error.message).toMatch(/^cannot read s3:\/\/no-such-bucket\/acme\/x\/: NoSuchBucket/);

    await lake.put('acme/notpq/a.parquet', '{"id":1}\n');
    const notParquet = await submit({ model: 'm', input: { uri: `s3://${BUCKET}/acme/notpq/a.parquet` }, output: out });
    expect(notParquet.status).toBe(400);
    expect((await notParquet.json()).error.message).toMatch(/a\.parquet: not a Parquet file/);
  });

  it('refuses an output prefix that already holds a manifest (409), writing nothing', async () => {
    await lake.put('acme/in409/a.jsonl', '{"id":1,"input":[1,2,3,4,5,6]}\n');
    await lake.put('acme/o409/_manifest.json', '{}');
    const res = await submit({ model: 'm', input: { uri: `s3://${BUCKET}/acme/in409/a.jsonl` }, output: { uri: `s3://${BUCKET}/acme/o409/` } });
    expect(res.status).toBe(409);
    expect((await res.json()).error.message).toContain('_manifest.json');
    expect((await lake.list('acme/o409/', 10)).map((o) => o.key)).toEqual(['acme/o409/_manifest.json']);
  });

  it('reads and writes the platform artifact store by store: keys (CSV in, CSV parts out)', async () => {
    await ensureWorker();
    const n = 40;
    const x = rows(n, F, 90);
    let csv = `id,${Array.from({ length: F }, (_, j) => `f${j}`).join(',')}\n`;
    for (let i = 0; i < n; i++) csv += `c${i},${Array.from(x.subarray(i * F, (i + 1) * F)).join(',')}\n`;
    await p.deps.store.put('tenants/acme/csv/a.csv', csv);
    const res = await submit({
      model: 'm',
      input: { uri: 'store:tenants/acme/csv/' },
      output: { uri: 'store:tenants/acme/csv-out/', format: 'csv' },
      chunkBytes: 1024,
    });
    expect(res.status).toBe(202);
    const accepted = await res.json();
    expect(accepted.format).toBe('csv');
    const done = await waitDone(accepted.id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    const manifest = JSON.parse((await p.deps.store.get('tenants/acme/csv-out/_manifest.json')).toString()) as Manifest;
    const e = await expected(x, n);
    const ids: string[] = [];
    for (const part of manifest.parts) {
      expect(part.uri).toMatch(/^store:tenants\/acme\/csv-out\/part-\d{5}\.csv$/);
      const lines = (await p.deps.store.get(part.uri.slice('store:'.length))).toString().trim().split('\n').filter(Boolean).slice(1);
      expect(lines).toHaveLength(part.rows);
      for (const l of lines) {
        const [row, id, ...vals] = l.split(',');
        const r = part.source.firstRow + Number(row);
        if (id !== `c${r}` || !close(vals.map(Number), e, r)) throw new Error(`row ${r}: ${l}`);
        ids.push(id!);
      }
    }
    expect(ids).toEqual(Array.from({ length: n }, (_, i) => `c${i}`));
    // Downloaded as CSV: the parts one after another under a single header.
    const csvOut = (await (await fetch(`${p.url}/v1/batches/${accepted.id}/output?format=csv`)).text()).trim().split('\n');
    expect(csvOut).toHaveLength(n + 1);
    expect(csvOut[0]!.startsWith('row,id,')).toBe(true);
    expect(csvOut.slice(1).map((l) => l.split(',')[1])).toEqual(ids);
  });
});

// Bulk batch scoring on the real Redis with two worker processes: order, ids, exact values, CSV,
// bad rows, cancel, and the read routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 8;
const model = buildMlp({ sizes: [F, 16, 3], seed: 17 });

beforeAll(async () => {
  p = await startPlatform({ workers: 2 });
  expect((await uploadModel(p.url, 'scorer', model)).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

async function submit(body: string, query: string, contentType = 'application/x-ndjson') {
  return fetch(`${p.url}/v1/batches?${query}`, { method: 'POST', body, headers: { 'content-type': contentType } });
}

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

const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe('batch scoring', () => {
  it('scores a 100,000-row JSONL file in input order with ids echoed and exact values', async () => {
    const n = 100_000;
    const x = rows(n, F, 4);
    const body = Array.from({ length: n }, (_, i) => JSON.stringify({ id: `r${i}`, input: Array.from(x.subarray(i * F, (i + 1) * F)) })).join('\n');
    const res = await submit(body, 'model=scorer&chunkRows=10000');
    expect(res.status).toBe(202);
    const accepted = await res.json();
    // The upload is scored as it arrives: by the answer, its first chunks may be done.
    expect(accepted).toMatchObject({ model: { name: 'scorer', version: 1 }, chunks: { total: 10 }, requestCounts: { total: n } });
    expect(['queued', 'running', 'finalizing', 'completed']).toContain(accepted.status);
    const done = await waitDone(accepted.id);
    expect(done).toMatchObject({ status: 'completed', progress: 1, requestCounts: { total: n, completed: n, failed: 0 } });
    const out = lines(await (await fetch(`${p.url}/v1/batches/${accepted.id}/output`)).text());
    expect(out).toHaveLength(n);
    const expected = (await directRun(model, { input: { data: x, dims: [n, F] } })).output!;
    for (let i = 0; i < n; i++) {
      const o = out[i];
      if (o.row !== i || o.id !== `r${i}`) throw new Error(`line ${i} is row ${o.row} id ${o.id}`);
      for (let j = 0; j < 3; j++) if (Math.abs(o.outputs.output[j] - expected[i * 3 + j]!) > 1e-5) throw new Error(`row ${i} differs`);
    }
    expect(await (await fetch(`${p.url}/v1/batches/${accepted.id}/errors`)).text()).toBe('');
  });

  it('scores CSV, and puts bad rows in the error file with their row numbers', async () => {
    const header = ['id', ...Array.from({ length: F }, (_, i) => `f${i}`)].join(',');
    const good = (i: number) => [`c${i}`, ...Array.from({ length: F }, (_, j) => ((i + j) % 7) / 7)].join(',');
    const body = [header, good(0), good(1), 'c2,1,2,3', good(3), `c4,${'x,'.repeat(F - 1)}x`, good(5)].join('\n') + '\n';
    const res = await submit(body, 'model=scorer&format=csv&chunkRows=2', 'text/csv');
    expect(res.status).toBe(202);
    const done = await waitDone((await res.json()).id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: 6, completed: 4, failed: 2 } });
    const out = lines(await (await fetch(`${p.url}/v1/batches/${done.id}/output`)).text());
    expect(out.map((o) => [o.row, o.id])).toEqual([
      [0, 'c0'],
      [1, 'c1'],
      [3, 'c3'],
      [5, 'c5'],
    ]);
    const x = Float32Array.from(good(3).split(',').slice(1).map(Number));
    const want = (await directRun(model, { input: { data: x, dims: [1, F] } })).output!;
    out[2].outputs.output.forEach((v: number, j: number) => expect(Math.abs(v - want[j]!)).toBeLessThan(1e-5));
    const errs = lines(await (await fetch(`${p.url}/v1/batches/${done.id}/errors`)).text());
    expect(errs.map((e) => [e.row, e.id, e.error.code])).toEqual([
      [2, 'c2', 'bad_row'],
      [4, 'c4', 'bad_row'],
    ]);
    expect(errs[0].error.message).toMatch(/columns/);
    expect(errs[1].error.message).toMatch(/not a number/);
    const csv = await (await fetch(`${p.url}/v1/batches/${done.id}/output?format=csv`)).text();
    expect(csv.split('\n')[0]).toBe('row,id,output_0,output_1,output_2');
    expect(csv.trim().split('\n')).toHaveLength(5);
  });

  it('reports unparseable JSONL rows and wrong lengths, scoring the rest', async () => {
    const ok = (i: number) => JSON.stringify({ input: Array(F).fill(i / 10) });
    const body = [ok(0), '{not json', JSON.stringify({ input: [1, 2] }), JSON.stringify({ other: 1 }), ok(4)].join('\n');
    const done = await waitDone((await (await submit(body, 'model=scorer')).json()).id);
    expect(done.requestCounts).toEqual({ total: 5, completed: 2, failed: 3 });
    const errs = lines(await (await fetch(`${p.url}/v1/batches/${done.id}/errors`)).text());
    expect(errs.map((e) => e.row)).toEqual([1, 2, 3]);
    expect(errs[0].error.message).toMatch(/not valid JSON/);
    expect(errs[1].error.message).toMatch(/has 2 elements/);
    expect(errs[2].error.message).toMatch(/missing input "input"/);
  });

  it('rejects bad submissions with 4xx and stores nothing', async () => {
    expect((await submit('{"input":[1]}', 'model=nosuch')).status).toBe(404);
    const empty = await submit('', 'model=scorer');
    expect(empty.status).toBe(400);
    expect((await empty.json()).error.message).toMatch(/empty/);
    expect((await submit('{}', '')).status).toBe(400);
    expect((await submit('{}', 'model=scorer&chunkRows=0')).status).toBe(400);
    const badHeader = await submit('id,a,b\n1,2,3\n', 'model=scorer&format=csv', 'text/csv');
    expect(badHeader.status).toBe(400);
    expect((await badHeader.json()).error.message).toMatch(/2 feature columns.*takes 8/);
    expect((await fetch(`${p.url}/v1/batches/batch_00000000000000000000`)).status).toBe(404);
  });

  it('accepts a multipart upload with a file field', async () => {
    const form = new FormData();
    form.append('model', 'scorer');
    form.append('metadata', JSON.stringify({ team: 'a' }));
    form.append('file', new Blob([Array.from({ length: 10 }, (_, i) => JSON.stringify({ id: i, input: Array(F).fill(i) })).join('\n')]), 'rows.jsonl');
    const res = await fetch(`${p.url}/v1/batches`, { method: 'POST', body: form });
    expect(res.status).toBe(202);
    const done = await waitDone((await res.json()).id);
    expect(done).toMatchObject({ status: 'completed', metadata: { team: 'a' }, requestCounts: { total: 10, completed: 10 } });
  });

  it('lists batches newest first and streams status events until the end', async () => {
    const list = await (await fetch(`${p.url}/v1/batches?limit=2`)).json();
    expect(list.data).toHaveLength(2);
    expect(list.total).toBeGreaterThanOrEqual(4);
    expect(Date.parse(list.data[0].createdAt)).toBeGreaterThanOrEqual(Date.parse(list.data[1].createdAt));
    const text = await (await fetch(`${p.url}/v1/batches/${list.data[0].id}/events`)).text();
    expect(text).toMatch(/^event: status\ndata: \{.*"status":"completed"/m);
  });
});

// An uploaded JSONL batch is scored while it arrives (#26 item 2): the first chunks are scored
// before the upload has ended (the status says `uploading` and `requestCounts.total: null` until
// then), and the output is the same as a direct run, rows numbered across the whole file.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 8;
const model = buildMlp({ sizes: [F, 16, 3], seed: 5 });

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_BATCH_MAX_CHUNKS: '8' } });
  expect((await uploadModel(p.url, 'streamed', model)).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

interface View {
  id: string;
  status: string;
  uploading?: boolean;
  requestCounts: { total: number | null; completed: number; failed: number };
  chunks: { total: number; done: number };
}

describe('an upload scored as it arrives', () => {
  it('scores its first chunks before the upload ends; the totals are known when it ends', async () => {
    const n = 50;
    const x = rows(n, F, 9);
    const line = (i: number) => `${JSON.stringify({ id: `r${i}`, input: Array.from(x.subarray(i * F, (i + 1) * F)) })}\n`;
    const req = http.request(`${p.url}/v1/batches?model=streamed&chunkRows=10`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } });
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    // The first 30 rows: three chunks of 10 close; the request stays open.
    for (let i = 0; i < 30; i++) req.write(line(i));
    const early = await until(
      async () => {
        const list = (await (await fetch(`${p.url}/v1/batches`)).json()) as { data: View[] };
        const v = list.data[0];
        return v && v.chunks.done >= 1 ? v : null;
      },
      'a chunk scored while the upload is open',
      120_000,
    );
    expect(early).toMatchObject({ uploading: true, requestCounts: { total: null } });
    expect(early.requestCounts.completed).toBeGreaterThanOrEqual(10);
    for (let i = 30; i < n; i++) req.write(line(i));
    req.end();
    const res = await answer;
    expect(res.status).toBe(202);
    const accepted = JSON.parse(res.body) as View;
    expect(accepted.id).toBe(early.id);
    expect(accepted.uploading).toBeUndefined();
    expect(accepted).toMatchObject({ chunks: { total: 5 }, requestCounts: { total: n } });

    const done = await until(
      async () => {
        const v = (await (await fetch(`${p.url}/v1/batches/${accepted.id}`)).json()) as View;
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      'the batch to end',
      120_000,
    );
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    const out = (await (await fetch(`${p.url}/v1/batches/${accepted.id}/output`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { row: number; id: string; outputs: { output: number[] } });
    expect(out.map((o) => o.row)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(out.map((o) => o.id)).toEqual(Array.from({ length: n }, (_, i) => `r${i}`));
    const expected = (await directRun(model, { input: { data: x, dims: [n, F] } })).output!;
    for (let i = 0; i < n; i++) for (let j = 0; j < 3; j++) expect(Math.abs(out[i]!.outputs.output[j]! - expected[i * 3 + j]!)).toBeLessThan(1e-5);
  }, 240_000);

  it('an upload refused midway, its first chunks enqueued and being scored, leaves nothing behind', async () => {
    const before = ((await (await fetch(`${p.url}/v1/batches`)).json()) as { data: View[] }).data.map((v) => v.id);
    const dirs = () => (fs.existsSync(path.join(p.cfg.MODELQ_DATA_DIR, 'batches')) ? fs.readdirSync(path.join(p.cfg.MODELQ_DATA_DIR, 'batches')).sort() : []);
    const dirsBefore = dirs();
    // chunkRows=1: the 9th chunk is past MODELQ_BATCH_MAX_CHUNKS=8, after 8 were stored and enqueued.
    const body = Array.from({ length: 40 }, (_, i) => JSON.stringify({ input: Array.from({ length: F }, (_, k) => i + k) })).join('\n');
    const res = await fetch(`${p.url}/v1/batches?model=streamed&chunkRows=1`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/more than 8 chunks at chunkRows=1 .*MODELQ_BATCH_MAX_CHUNKS/);
    const after = ((await (await fetch(`${p.url}/v1/batches`)).json()) as { data: View[] }).data.map((v) => v.id);
    expect(after).toEqual(before);
    expect(dirs()).toEqual(dirsBefore);
    // This platform's keys only (the Redis is shared): no job of the refused batch is left.
    const left = (await p.redis.keys(`${keyPrefix(p.cfg)}:score:batch_*`)).filter((k) => !before.some((id) => k.includes(id)));
    expect(left).toEqual([]);
  }, 120_000);

  it('a CSV upload refused at its header leaves no batch behind', async () => {
    const res = await fetch(`${p.url}/v1/batches?model=streamed&format=csv`, {
      method: 'POST',
      body: 'a,b\n1,2\n',
      headers: { 'content-type': 'text/csv' },
    });
    expect(res.status).toBe(400);
    const list = (await (await fetch(`${p.url}/v1/batches`)).json()) as { data: View[] };
    expect(list.data.every((v) => v.status === 'completed')).toBe(true);
  }, 60_000);
});

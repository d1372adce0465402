// Batches that cannot hurt the producer (issue 14): a download whose part disappears ends as a
// failed response and the producer stays up; a missing part is never a short 200; a multipart
// form refused after its file, or aborted mid-file, leaves nothing behind; a CSV header that
// never ends is refused at MODELQ_MAX_ROW_BYTES without being held.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 8;
const MiB = 1024 * 1024;

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_MAX_ROW_BYTES: String(MiB) } });
  // 64 outputs: about 1.3 KB of output per row, so a download is far larger than socket buffers.
  expect((await uploadModel(p.url, 'wide-out', buildMlp({ sizes: [F, 16, 64], seed: 3 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const body = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, input: Array(F).fill(i % 10) })).join('\n');

async function scored(n: number, chunkRows: number): Promise<string> {
  const res = await fetch(`${p.url}/v1/batches?model=wide-out&chunkRows=${chunkRows}`, {
    method: 'POST',
    body: body(n),
    headers: { 'content-type': 'application/x-ndjson' },
  });
  expect(res.status).toBe(202);
  const { id } = await res.json();
  await until(async () => (await (await fetch(`${p.url}/v1/batches/${id}`)).json()).status === 'completed', `batch ${id}`, 120_000);
  return id;
}

const batchDir = (id: string) => path.join(p.cfg.MODELQ_DATA_DIR, 'batches', id);
const storedBatches = () => (fs.existsSync(path.join(p.cfg.MODELQ_DATA_DIR, 'batches')) ? fs.readdirSync(path.join(p.cfg.MODELQ_DATA_DIR, 'batches')) : []);
const openDataFiles = () =>
  fs
    .readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((f) => f.startsWith(p.cfg.MODELQ_DATA_DIR));
const batchRecords = async () => (await p.redis.keys(`${keyPrefix(p.cfg)}:records:batch:*`)).length;
const scoreJobs = async () => (await p.deps.queues.queue('score').getJobCounts()) as Record<string, number>;

describe('batch downloads', () => {
  it('a part removed during a download fails that response; the producer stays up', async () => {
    const id = await scored(20_000, 1000);
    const res = await fetch(`${p.url}/v1/batches/${id}/output`);
    expect(res.status).toBe(200);
    const total = Number(res.headers.get('content-length'));
    const reader = res.body!.getReader();
    let got = (await reader.read()).value!.length;
    fs.rmSync(path.join(batchDir(id), 'out'), { recursive: true, force: true }); // as retention would
    const ended = await (async () => {
      for (;;) {
        const r = await reader.read();
        if (r.done) return 'done';
        got += r.value.length;
      }
    })().catch((e: Error) => `failed: ${e.message}`);
    expect(ended).toMatch(/^failed/);
    expect(got).toBeLessThan(total);
    // Still serving, and the next read of the same output says what is missing instead of a short 200.
    const again = await fetch(`${p.url}/v1/batches/${id}/output`);
    expect(again.status).toBe(404);
    expect((await again.json()).error.message).toMatch(/part 0 of the batch's output is no longer there/);
    expect((await fetch(`${p.url}/v1/batches/${id}`)).status).toBe(200);
  });
});

describe('multipart uploads', () => {
  it('a form field after the file is a 400 and no batch is created or scored', async () => {
    const before = await batchRecords();
    const jobsBefore = await scoreJobs();
    const dirsBefore = storedBatches();
    const form = new FormData();
    form.append('model', 'wide-out');
    form.append('file', new Blob([body(50)]), 'rows.jsonl');
    form.append('metadata', JSON.stringify({ late: 'yes' }));
    const res = await fetch(`${p.url}/v1/batches`, { method: 'POST', body: form });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/form field "metadata" must come before the file field/);
    expect(await batchRecords()).toBe(before);
    expect(await scoreJobs()).toEqual(jobsBefore);
    expect(storedBatches().filter((b) => !dirsBefore.includes(b))).toEqual([]);
  });

  it('an upload aborted mid-file leaves no temp file, no open file, no record and no job', async () => {
    const before = await batchRecords();
    const jobsBefore = await scoreJobs();
    const dirsBefore = storedBatches();
    const fresh = () =>
      storedBatches()
        .filter((b) => !dirsBefore.includes(b))
        .flatMap((b) => fs.readdirSync(path.join(p.cfg.MODELQ_DATA_DIR, 'batches', b)));
    const boundary = 'xBOUNDARYx';
    const req = http.request(`${p.url}/v1/batches`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
    req.on('error', () => {});
    req.write(
      `--${boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwide-out\r\n--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n`,
    );
    req.write(body(5000));
    // The file is on its way to the store once a temp file exists; then the client goes away.
    await until(() => fresh().some((f) => f.endsWith('.tmp')), 'the upload to reach the store');
    req.destroy();
    await until(() => fresh().length === 0 && openDataFiles().length === 0, 'the temp file and its descriptor to go', 10_000);
    expect(await batchRecords()).toBe(before);
    expect(await scoreJobs()).toEqual(jobsBefore);
  });
});

describe('CSV header bound', () => {
  it('a header that never ends is a 400 at MODELQ_MAX_ROW_BYTES, answered while the client is still sending', async () => {
    const total = 64 * MiB;
    const before = await batchRecords();
    const jobsBefore = await scoreJobs();
    const dirsBefore = storedBatches();
    const result = await new Promise<{ status: number; body: string; sent: number }>((resolve, reject) => {
      let sent = 0;
      let answered = false;
      const req = http.request(`${p.url}/v1/batches?model=wide-out&format=csv`, { method: 'POST', headers: { 'content-type': 'text/csv' } }, (res) => {
        answered = true;
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: b, sent });
          req.destroy();
        });
      });
      req.on('error', (e) => {
        if (!answered) reject(e);
      });
      const block = Buffer.from('col,'.repeat(16384));
      const pump = () => {
        while (!answered && sent < total) {
          sent += block.length;
          if (!req.write(block)) return void req.once('drain', pump);
        }
        if (!answered) req.end();
      };
      pump();
    });
    expect(result.status).toBe(400);
    expect(JSON.parse(result.body).error.message).toMatch(/CSV header is longer than 1048576 bytes \(MODELQ_MAX_ROW_BYTES\)/);
    expect(result.sent).toBeLessThan(total);
    // Refused before anything was kept: no record, no job, no stored upload.
    expect(await batchRecords()).toBe(before);
    expect(await scoreJobs()).toEqual(jobsBefore);
    expect(storedBatches().filter((b) => !dirsBefore.includes(b))).toEqual([]);
  });
});

// Download warnings (#29 item 2): complete downloads never log a warning, even when each client
// closes its connection the moment the last byte arrives; a download the client aborts mid-body
// logs exactly one. The producer's log is read from a pino logger writing into memory.
import http from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchView } from '../../core/batches.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let id: string;
const logged: { level: number; msg: string }[] = [];
const warnings = () => logged.filter((l) => l.level >= 40);
const rows = 20_000;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logged.push(JSON.parse(line));
      done();
    },
  });
  p = await startPlatform({ workers: 1, logger: pino({ level: 'info' }, sink) });
  expect((await uploadModel(p.url, 'm', buildMlp({ sizes: [4, 8, 3], seed: 2 }))).status).toBe(201);
  const body = Array.from({ length: rows }, (_, i) => JSON.stringify({ input: [i % 7, 1, 2, 3] })).join('\n') + '\n';
  const r = await fetch(`${p.url}/v1/batches?model=m&chunkRows=5000`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
  expect(r.status).toBe(202);
  id = ((await r.json()) as BatchView).id;
  await until(async () => ((await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as BatchView).status === 'completed', 'the batch to complete', 60_000);
}, 90_000);
afterAll(async () => {
  await p?.stop();
});

/** GETs `path`, counting body bytes; `abortAfter` destroys the socket after that many, else it is destroyed at the last byte. */
function get(path: string, abortAfter?: number): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${p.url}${path}`, { agent: false }, (res) => {
      let bytes = 0;
      const expected = Number(res.headers['content-length']);
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        // Closed without waiting for the response's end: as a client that counted its bytes does.
        if ((abortAfter !== undefined && bytes >= abortAfter) || bytes === expected) {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, bytes, complete: bytes === expected });
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, complete: true }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, complete: false }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

describe('batch downloads', () => {
  it('log no warning for complete downloads, each closed by the client at its last byte', async () => {
    const before = warnings().length;
    for (let i = 0; i < 30; i++) {
      const format = ['jsonl', 'csv', 'parquet'][i % 3];
      const r = await get(`/v1/batches/${id}/output?format=${format}`);
      expect(r.status).toBe(200);
      expect(r.complete).toBe(true);
    }
    // Give a late pipeline rejection the chance to log.
    await new Promise((r) => setTimeout(r, 300));
    expect(warnings().slice(before)).toEqual([]);
  }, 60_000);

  it('log one warning for a download the client aborts mid-body', async () => {
    const before = warnings().length;
    const r = await get(`/v1/batches/${id}/output`, 64 * 1024);
    expect(r.complete).toBe(false);
    await until(() => warnings().length > before, 'the warning');
    await new Promise((r) => setTimeout(r, 300));
    const w = warnings().slice(before);
    expect(w).toHaveLength(1);
    expect(w[0]).toMatchObject({ batch: id, msg: expect.stringMatching(/download cut short/) });
  }, 30_000);
});

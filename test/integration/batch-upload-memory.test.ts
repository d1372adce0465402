// A 1 GB batch upload streams through the producer: its peak resident memory does not grow with
// the file size. The producer runs as its own process so its memory can be read from /proc.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix, loadConfig } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { deleteKeys, testEnv, uploadModel } from '../helpers/platform.ts';
import { Redis } from 'ioredis';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MB = 1024 * 1024;
let env: Record<string, string>;
let producer: ReturnType<typeof spawn>;
let url: string;

const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** POSTs `totalBytes` of JSONL rows, generated on the fly, as a chunked body. */
function uploadGenerated(totalBytes: number): Promise<{ status: number; body: string }> {
  const row = `${JSON.stringify({ id: 'x'.repeat(1000), input: [1, 2, 3, 4, 5, 6, 7, 8] })}\n`;
  const block = Buffer.from(row.repeat(Math.floor(MB / row.length)));
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/batches?model=m&chunkRows=100000`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < totalBytes) {
        sent += block.length;
        if (!req.write(block)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

beforeAll(async () => {
  env = testEnv({ MODELQ_PORT: String(await freePort()), MODELQ_LOG_LEVEL: 'info' });
  producer = spawn(process.execPath, ['--import', 'tsx', 'producer/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  url = `http://127.0.0.1:${env.MODELQ_PORT}`;
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: producer.stdout! }).on('line', (l) => {
      if (l.includes('producer listening')) resolve();
    });
    producer.once('exit', (c) => reject(new Error(`producer exited ${c}`)));
  });
});
afterAll(async () => {
  producer?.kill('SIGKILL');
  const redis = new Redis();
  await deleteKeys(redis, keyPrefix(loadConfig(env)));
  redis.disconnect();
  fs.rmSync(env.MODELQ_DATA_DIR!, { recursive: true, force: true });
});

describe('batch upload', () => {
  it("does not grow the producer's memory with the file size (1 GB)", async () => {
    // The model check needs a worker; register the model's record directly through a short-lived one.
    const { startWorker } = await import('../../workers/worker.ts');
    const { createLogger } = await import('../../core/logger.ts');
    const w = await startWorker(loadConfig({ ...env, MODELQ_QUEUES: 'model', MODELQ_LOG_LEVEL: 'silent' }), createLogger('w', 'silent'));
    expect((await uploadModel(url, 'm', buildMlp({ sizes: [8, 4], seed: 1 }))).status).toBe(201);
    await w.stop();

    const small = await uploadGenerated(32 * MB);
    expect(small.status).toBe(202);
    const before = peakRss(producer.pid!);
    const big = await uploadGenerated(1024 * MB);
    expect(big.status).toBe(202);
    const accepted = JSON.parse(big.body);
    expect(accepted.requestCounts.total).toBeGreaterThan(900_000);
    const after = peakRss(producer.pid!);
    // Stored one object per chunk as it arrived (producer/batches/upload-stream.ts).
    const dir = path.join(env.MODELQ_DATA_DIR!, 'batches', accepted.id);
    const stored = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith('input-'))
      .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
    expect(stored).toBeGreaterThanOrEqual(1024 * MB - MB);
    // 32x more data, and the peak grew by far less than the file: it is streamed, not held.
    expect(after - before).toBeLessThan(128 * MB);
    console.log(`producer peak RSS: ${(before / MB).toFixed(0)} MiB after 32 MiB, ${(after / MB).toFixed(0)} MiB after 1 GiB`);
  }, 180_000);
});

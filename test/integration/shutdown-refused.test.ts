// A refused upload is not work in flight (#29 item 1): the producer, run as its own process, answers
// a large upload it refuses (a CSV declared as JSONL) with Connection: close, and a SIGINT then stops
// it within 2 s, whether the client is still sending or has stopped without closing its socket.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix, loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { deleteKeys, testEnv, uploadModel } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MB = 1024 * 1024;
let env: Record<string, string>;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface Producer {
  child: ChildProcess;
  url: string;
  /** Resolves with the exit code and the time it exited. */
  exited: Promise<{ code: number | null; at: number }>;
  lines: string[];
}

async function startProducer(): Promise<Producer> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'producer/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env, MODELQ_PORT: String(port), MODELQ_LOG_LEVEL: 'info', MODELQ_LOG_FORMAT: 'json' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<{ code: number | null; at: number }>((r) => child.once('exit', (code) => r({ code, at: Date.now() })));
  child.stderr!.on('data', (b) => lines.push(String(b)));
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (l) => {
      lines.push(l);
      if (l.includes('"producer listening"')) resolve();
    });
    void exited.then(() => reject(new Error(`producer exited before listening:\n${lines.join('\n')}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, exited, lines };
}

/** POSTs CSV bytes declared as JSONL; `pace` sends 1 KiB every 50 ms after the first MiB (a slow client that goes on sending). */
function refusedUpload(url: string, o: { declare: boolean; pace: boolean; beforeBody?: () => void }) {
  const block = Buffer.from('a,b,c\n1,2,3\n'.repeat(MB / 12));
  const total = 64;
  const req = http.request(`${url}/v1/batches?model=m&format=jsonl`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-ndjson',
      ...(o.declare ? { 'content-length': String(block.length * total) } : {}),
      // The body waits for "100 Continue": sent once the request has reached the route.
      ...(o.beforeBody ? { expect: '100-continue' } : {}),
    },
  });
  req.on('error', () => {}); // the server cuts the upload after its answer: expected
  const answer = new Promise<{ status: number; connection?: string; body: string }>((resolve) =>
    req.once('response', (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    }),
  );
  let sent = 0;
  const pump = () => {
    while (sent < total && !req.destroyed) {
      sent++;
      if (o.pace && sent > 1) return void setTimeout(() => req.write(block.subarray(0, 1024), pump), 50).unref();
      if (!req.write(block)) return void req.once('drain', pump);
    }
    // The client never ends its request: it keeps the socket open, as a stalled upload would.
  };
  if (o.beforeBody)
    req.once('continue', () => {
      o.beforeBody!();
      pump();
    });
  else pump();
  return { req, answer };
}

beforeAll(async () => {
  env = testEnv();
  // The batch route checks the model first; register one through a short-lived model worker.
  const p = await startProducer();
  const { startWorker } = await import('../../workers/worker.ts');
  const w = await startWorker(loadConfig({ ...env, MODELQ_QUEUES: 'model', MODELQ_LOG_LEVEL: 'silent' }), createLogger('w', 'silent'));
  expect((await uploadModel(p.url, 'm', buildMlp({ sizes: [3, 2], seed: 1 }))).status).toBe(201);
  await w.stop();
  p.child.kill('SIGKILL');
  await p.exited;
}, 60_000);
afterAll(async () => {
  const redis = new Redis(loadConfig(env).MODELQ_REDIS_URL);
  await deleteKeys(redis, keyPrefix(loadConfig(env)));
  redis.disconnect();
  fs.rmSync(env.MODELQ_DATA_DIR!, { recursive: true, force: true });
});

describe('SIGINT after a refused upload', () => {
  it('exits within 2 s after a 64 MiB upload answered 400 with Connection: close', async () => {
    const p = await startProducer();
    const up = refusedUpload(p.url, { declare: true, pace: true });
    const a = await up.answer;
    expect(a.status).toBe(400);
    expect(a.body).toMatch(/declared JSONL/);
    expect(a.connection).toBe('close');
    const sent = Date.now();
    p.child.kill('SIGINT');
    const { code, at } = await p.exited;
    up.req.destroy();
    expect(code).toBe(0);
    expect(at - sent).toBeLessThan(2000);
    expect(p.lines.join('\n')).not.toMatch(/outlived the grace period/);
  }, 60_000);

  it('exits within 2 s when the signal comes while an upload of unknown length, then refused, is in flight', async () => {
    const p = await startProducer();
    let sent = 0;
    // The signal lands once the request is in the route, before its first byte: the refusal comes
    // during the stop, and its drain (up to 2 s for a slow client) must not hold the stop up.
    const up = refusedUpload(p.url, {
      declare: false,
      pace: true,
      beforeBody: () => {
        sent = Date.now();
        p.child.kill('SIGINT');
      },
    });
    const a = await up.answer;
    const { code, at } = await p.exited;
    up.req.destroy();
    expect(a.status).toBe(400);
    expect(code).toBe(0);
    expect(at - sent).toBeLessThan(2000);
  }, 60_000);
});

// Two "hosts" on one machine: network namespaces joined by a veth pair. Host A runs Redis, the S3
// server and the producer; host B runs a worker process that knows only Redis's URL and the S3
// settings (its own data and cache directories, no producer address). A batch submitted on A is
// scored on B and its output is exact. Namespaces and processes go away even when it fails.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { rows, tmpDir } from '../fixtures/models.ts';
import { expectExactOutput } from '../helpers/batch-output.ts';
import { s3Env } from '../unit/core/storage/s3-server.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const F = 10;
const model = buildMlp({ sizes: [F, 32, 4], seed: 12 });

const ip = (...args: string[]) => {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
};

/** Whether this machine lets us make network namespaces (root with CAP_NET_ADMIN and iproute2). */
function netnsUsable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  if (spawnSync('ip', ['-V']).status !== 0) return 'no iproute2 (ip)';
  const probe = `mqprobe-${randomBytes(3).toString('hex')}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `ip netns add fails: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

interface Proc {
  name: string;
  child: ChildProcess;
  lines: string[];
  exited: Promise<unknown>;
}

/** Starts `cmd` inside namespace `ns` (ip netns exec execs it: the child is the process itself). */
function inNs(ns: string, name: string, cmd: string[], env: Record<string, string>): Proc {
  const child = spawn('ip', ['netns', 'exec', ns, ...cmd], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  readline.createInterface({ input: child.stderr! }).on('line', (l) => lines.push(l));
  const exited = new Promise((r) => child.once('exit', r));
  return { name, child, lines, exited };
}

function waitLine(p: Proc, re: RegExp, ms = 40_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = setInterval(() => {
      const l = p.lines.find((x) => re.test(x));
      if (l) {
        clearInterval(t);
        clearTimeout(to);
        resolve(l);
      } else if (p.child.exitCode !== null || p.child.signalCode !== null) {
        clearInterval(t);
        clearTimeout(to);
        reject(new Error(`${p.name} exited:\n${p.lines.join('\n')}`));
      }
    }, 50);
    const to = setTimeout(() => {
      clearInterval(t);
      reject(new Error(`${p.name}: no ${re} in ${ms} ms:\n${p.lines.join('\n')}`));
    }, ms);
  });
}

async function stopProc(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(t);
}

/** HTTP over the producer's unix socket: the test process stays in its own namespace. */
function request(socketPath: string, method: string, url: string, body?: string | Uint8Array): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: url, headers: body ? { 'content-type': 'application/octet-stream' } : {} }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : Buffer.from(body));
  });
}

// The producer on host A, listening on a unix socket instead of a TCP port.
const PRODUCER = `
const { loadConfig } = await import('./core/config.ts');
const { createLogger } = await import('./core/logger.ts');
const { buildApp } = await import('./producer/app.ts');
const { createProducerDeps, closeProducerDeps } = await import('./producer/deps.ts');
const cfg = loadConfig();
const deps = await createProducerDeps(cfg, createLogger('producer', 'warn'));
const server = buildApp(deps).listen(process.env.SOCKET, () => console.log('producer listening'));
process.on('SIGTERM', () => { server.closeAllConnections(); server.close(() => closeProducerDeps(deps).finally(() => process.exit(0))); });
`;

const reason = netnsUsable();

describe('chaos: two hosts', () => {
  // CI runs as root on this kind of machine, so network namespaces are there: a machine without
  // them fails this test with the reason rather than skipping it.
  it('a worker on another host scores a batch through Redis and S3 only', async () => {
    if (reason !== null) throw new Error(`network namespaces are not usable here: ${reason}`);
    const id = randomBytes(3).toString('hex');
    const nsA = `mq-${id}-a`;
    const nsB = `mq-${id}-b`;
    // A /30 in 10.x that exists only inside the two namespaces.
    const net = `10.${200 + (parseInt(id.slice(0, 2), 16) % 50)}.${parseInt(id.slice(2, 4), 16)}`;
    const addrA = `${net}.1`;
    const addrB = `${net}.2`;
    const dirs = { a: tmpDir('modelq-host-a'), b: tmpDir('modelq-host-b') };
    const procs: Proc[] = [];
    const base = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', TMPDIR: process.env.TMPDIR ?? '/tmp' };
    const bucket = 'modelq';
    const s3Endpoint = `http://${addrA}:9000`;
    const socket = path.join(dirs.a, 'producer.sock');
    try {
      ip('netns', 'add', nsA);
      ip('netns', 'add', nsB);
      // Made inside A with its peer placed in B: the pair never exists in this namespace.
      ip('-n', nsA, 'link', 'add', `mqa${id}`, 'type', 'veth', 'peer', 'name', `mqb${id}`, 'netns', nsB);
      ip('-n', nsA, 'addr', 'add', `${addrA}/30`, 'dev', `mqa${id}`);
      ip('-n', nsB, 'addr', 'add', `${addrB}/30`, 'dev', `mqb${id}`);
      for (const [ns, dev] of [
        [nsA, `mqa${id}`],
        [nsB, `mqb${id}`],
      ] as const) {
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('-n', ns, 'link', 'set', dev, 'up');
      }

      // Host A: Redis, the S3 server, the producer.
      const redis = inNs(
        nsA,
        'redis',
        [
          'redis-server',
          '--bind',
          '127.0.0.1',
          addrA,
          '--port',
          '6379',
          '--protected-mode',
          'no',
          '--save',
          '',
          '--appendonly',
          'no',
          '--maxmemory-policy',
          'noeviction',
          '--dir',
          dirs.a,
        ],
        base,
      );
      procs.push(redis);
      await waitLine(redis, /Ready to accept connections/);
      const s3 = inNs(nsA, 's3', [process.execPath, '--import', 'tsx', 'test/unit/core/storage/s3-server.ts'], {
        ...base,
        S3_HOST: addrA,
        S3_PORT: '9000',
        S3_BUCKETS: bucket,
      });
      procs.push(s3);
      await waitLine(s3, /"endpoint"/);
      const producer = inNs(nsA, 'producer', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', PRODUCER], {
        ...base,
        ...s3Env(s3Endpoint, bucket),
        SOCKET: socket,
        MODELQ_REDIS_URL: 'redis://127.0.0.1:6379',
        MODELQ_DATA_DIR: path.join(dirs.a, 'data'),
      });
      procs.push(producer);
      await waitLine(producer, /producer listening/);

      // Host B: a worker that knows Redis's URL and the S3 settings, nothing else.
      const worker = inNs(nsB, 'worker', [process.execPath, '--import', 'tsx', 'workers/main.ts'], {
        ...base,
        ...s3Env(s3Endpoint, bucket),
        MODELQ_REDIS_URL: `redis://${addrA}:6379`,
        MODELQ_DATA_DIR: path.join(dirs.b, 'data'),
        MODELQ_CACHE_DIR: path.join(dirs.b, 'cache'),
        MODELQ_ENGINE_THREADS: '1',
        MODELQ_LOG_LEVEL: 'info',
      });
      procs.push(worker);
      await waitLine(worker, /"worker started"/);

      const up = await request(socket, 'POST', '/v1/models/remote/versions', model);
      expect(up.status, up.text).toBe(201);
      const n = 2000;
      const x = rows(n, F, 21);
      const body = Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, input: Array.from(x.subarray(i * F, (i + 1) * F)) })).join('\n');
      const sub = await request(socket, 'POST', '/v1/batches?model=remote&chunkRows=500', body);
      expect(sub.status, sub.text).toBe(202);
      const batchId = JSON.parse(sub.text).id as string;
      let view: { status: string; requestCounts: { total: number; completed: number; failed: number } };
      const end = Date.now() + 60_000;
      for (;;) {
        view = JSON.parse((await request(socket, 'GET', `/v1/batches/${batchId}`)).text);
        if (['completed', 'failed', 'cancelled'].includes(view.status)) break;
        if (Date.now() > end) throw new Error(`batch still ${view.status} after 60 s:\n${worker.lines.slice(-20).join('\n')}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(view).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
      await expectExactOutput((await request(socket, 'GET', `/v1/batches/${batchId}/output`)).text, model, x, n, F);

      // The work crossed the link: Redis on A sees the worker's connections from B's address, and
      // the model reached B through its cache, not a shared disk.
      const clients = spawnSync('ip', ['netns', 'exec', nsA, 'redis-cli', '-h', '127.0.0.1', 'client', 'list'], { encoding: 'utf8' }).stdout;
      expect(clients).toContain(`addr=${addrB}:`);
      expect(fs.readdirSync(path.join(dirs.b, 'cache')).filter((f) => f.endsWith('.onnx'))).toHaveLength(1);
      expect(fs.existsSync(path.join(dirs.b, 'data'))).toBe(false);
    } finally {
      for (const p of procs.reverse()) await stopProc(p).catch(() => {});
      for (const ns of [nsB, nsA]) spawnSync('ip', ['netns', 'del', ns]);
      for (const d of Object.values(dirs)) fs.rmSync(d, { recursive: true, force: true });
    }
    expect(ip('netns', 'list')).not.toContain(`mq-${id}-`);
  }, 150_000);
});

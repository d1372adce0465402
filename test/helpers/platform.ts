// Integration harness: a producer app on an ephemeral port (in this process), worker processes
// started for real, a random key prefix and data dir per test, and cleanup of both.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { type Config, keyPrefix, loadConfig } from '../../core/config.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import { deleteKeysWithPrefix } from '../../core/redis.ts';
import { buildApp } from '../../producer/app.ts';
import { closeProducerDeps, createProducerDeps, type ProducerDeps } from '../../producer/deps.ts';
import { tmpDir } from '../fixtures/models.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    MODELQ_PREFIX: `t-${Math.random().toString(36).slice(2, 10)}`,
    MODELQ_DATA_DIR: tmpDir('modelq-data'),
    MODELQ_ENGINE_THREADS: '1',
    MODELQ_STATS_INTERVAL_MS: '200',
    MODELQ_LOG_LEVEL: 'warn',
    MODELQ_GRPC_PORT: '0', // producers spawned by tests must not fight over 8001; gRPC tests start their own
    // The online tests run on either transport: MODELQ_ONLINE_TRANSPORT=bullmq npx vitest run <file>.
    ...(process.env.MODELQ_ONLINE_TRANSPORT ? { MODELQ_ONLINE_TRANSPORT: process.env.MODELQ_ONLINE_TRANSPORT } : {}),
    ...extra,
  };
}

export interface WorkerProc {
  child: ChildProcess;
  exited: Promise<number | null>;
  lines: string[];
}

/** Starts `node --import tsx workers/main.ts` and resolves once it logs "worker started". */
export async function spawnWorker(env: Record<string, string>): Promise<WorkerProc> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'workers/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...env, MODELQ_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      lines.push(l);
      if (l.includes('"worker started"')) resolve();
    });
    child.stderr!.on('data', (b) => lines.push(String(b)));
    void exited.then((code) => reject(new Error(`worker exited with ${code} before starting:\n${lines.join('\n')}`)));
    setTimeout(() => reject(new Error(`worker did not start in 30 s:\n${lines.join('\n')}`)), 30_000).unref();
  });
  return { child, exited, lines };
}

export interface TestPlatform {
  env: Record<string, string>;
  cfg: Config;
  deps: ProducerDeps;
  url: string;
  redis: Redis;
  workers: WorkerProc[];
  addWorker(extra?: Record<string, string>): Promise<WorkerProc>;
  /** Kills the workers (SIGKILL) and drops the producer without a drain, leaving Redis and the data dir for a platform started on the same env. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPlatform(opts: { workers?: number; env?: Record<string, string>; logger?: Logger } = {}): Promise<TestPlatform> {
  const env = testEnv(opts.env);
  const cfg = loadConfig({ ...env });
  const deps = await createProducerDeps(cfg, opts.logger ?? createLogger('producer-test', 'silent'));
  const server: Server = await new Promise((r) => {
    const s = buildApp(deps).listen(0, '127.0.0.1', () => r(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const redis = new Redis(cfg.MODELQ_REDIS_URL);
  redis.on('error', () => {}); // chaos tests stop Redis on purpose
  const workers: WorkerProc[] = [];
  const addWorker = async (extra: Record<string, string> = {}) => {
    const w = await spawnWorker({ ...env, ...extra });
    workers.push(w);
    return w;
  };
  await Promise.all(Array.from({ length: opts.workers ?? 0 }, () => addWorker()));
  let producerDown = false;
  const dropProducer = async () => {
    if (producerDown) return;
    producerDown = true;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await closeProducerDeps(deps);
  };
  return {
    env,
    cfg,
    deps,
    url,
    redis,
    workers,
    addWorker,
    async crash() {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
      await dropProducer();
    },
    async stop() {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
      await dropProducer();
      await deleteKeys(redis, keyPrefix(cfg));
      redis.disconnect();
      fs.rmSync(cfg.MODELQ_DATA_DIR, { recursive: true, force: true });
    },
  };
}

/** Removes every key under this test's prefix (never FLUSHALL: the Redis is shared). */
export const deleteKeys = (redis: Redis, prefix: string): Promise<void> => deleteKeysWithPrefix(redis, prefix);

/** Polls `check` until it returns a truthy value; for conditions that have no event to wait on. */
export async function until<T>(check: () => Promise<T> | T, what: string, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function uploadModel(url: string, name: string, bytes: Uint8Array): Promise<Response> {
  return fetch(`${url}/v1/models/${name}/versions`, { method: 'POST', body: Buffer.from(bytes), headers: { 'content-type': 'application/octet-stream' } });
}

export async function postJson(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' }, ...init });
}

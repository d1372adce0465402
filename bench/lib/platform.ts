// Starts the whole platform (producer + workers, as `cli/start.ts` runs it) in a child process with
// its own ports, queue prefix and data directory, so a benchmark never touches another run's state.
//
// Contract with cli/start.ts (run as `node --import tsx cli/start.ts` from the repository root):
//   env MODELQ_PORT, MODELQ_DASHBOARD_PORT, MODELQ_GRPC_PORT, MODELQ_PREFIX, MODELQ_DATA_DIR, MODELQ_WORKERS (plus the
//   rest of this process's environment, e.g. the Redis URL); ready when GET /v2/health/ready is 200;
//   exits on SIGTERM after a graceful shutdown.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '../../core/redis.ts';
import { freePort, pollUntil, spawnNode, stopChild, tail } from './child.ts';

export interface PlatformOptions {
  /** MODELQ_WORKERS: worker processes the platform starts. */
  workers: number;
  /** How long to wait for readiness and for a registered model to appear. Default 60 000 ms. */
  readyTimeoutMs?: number;
}

export interface Platform {
  /** Base URL of the producer's HTTP API, without a trailing slash: http://127.0.0.1:PORT */
  url: string;
  /** host:port of the producer's gRPC inference service (MODELQ_GRPC_PORT). */
  grpcAddress: string;
  /** The run's Redis key prefix (MODELQ_PREFIX): its workers' published figures are under it. */
  prefix: string;
  /** Registers `bytes` as a new version of `name` and waits until GET /v2/models/{name} answers 200. */
  register(name: string, bytes: Uint8Array): Promise<void>;
  /** SIGTERM, wait for exit (SIGKILL after 15 s), remove the data directory and the run's Redis keys. */
  stop(): Promise<void>;
  /** Peak resident memory (VmHWM) so far of the platform's producer and worker processes, in bytes (Linux). */
  peakRss(): { producer: number; workers: number[] };
  /** Resident memory now (VmRSS) of the producer and worker processes, in bytes (Linux). */
  rssNow(): { producer: number; workers: number[] };
  /** CPU seconds (user + system) used so far by the producer and the workers together (Linux). */
  cpuSeconds(): number;
  /** CPU seconds (user + system, all threads: what process.cpuUsage() reports) used so far by each process (Linux). */
  cpuByProcess(): { producer: number; workers: number[] };
  /** CPU seconds so far of each thread of the producer and of each worker: thread id -> seconds, the main thread as -1 (Linux). */
  cpuByThread(): { producer: Map<number, number>; workers: Map<number, number>[] };
}

/** /proc/<pid>/stat fields 14 and 15 (utime, stime), in clock ticks of 1/100 s. */
const cpuOf = (stat: string) => {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

/** VmHWM of each process of this platform (its MODELQ_PREFIX in the environment) whose command line matches `script`. */
function peaksOf<T = number>(
  prefix: string,
  script: RegExp,
  read: (pid: string) => T = (p) => (Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024) as T,
): T[] {
  const out: T[] = [];
  for (const p of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (!script.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'))) continue;
      if (!fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`MODELQ_PREFIX=${prefix}`)) continue;
      out.push(read(p));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** GET and read the body, so the connection is released rather than left to the garbage collector. */
async function statusOf(url: string): Promise<number> {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const timeoutMs = opts.readyTimeoutMs ?? 60_000;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-'));
  const logFile = path.join(dataDir, 'platform.log');
  const port = await freePort();
  const dashboardPort = await freePort();
  const grpcPort = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const prefix = `bench-${crypto.randomBytes(4).toString('hex')}`;
  const child = spawnNode({
    args: ['--import', 'tsx', 'cli/start.ts'],
    logFile,
    env: {
      MODELQ_PORT: String(port),
      MODELQ_DASHBOARD_PORT: String(dashboardPort),
      MODELQ_GRPC_PORT: String(grpcPort),
      MODELQ_PREFIX: prefix,
      MODELQ_DATA_DIR: dataDir,
      MODELQ_WORKERS: String(opts.workers),
    },
  });
  const explain = (e: unknown) => new Error(`${(e as Error).message}\n--- ${logFile} ---\n${tail(logFile)}`);

  const stop = async () => {
    await stopChild(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
    // Finished infer jobs are kept a minute with their inputs (hundreds of MB after a run at
    // thousands of requests per second): a benchmark must not leave them in a shared Redis.
    await deleteKeys(`{${prefix}}`).catch((e: Error) => console.log(`bench: Redis keys under {${prefix}} not removed: ${e.message}`));
  };

  try {
    await pollUntil('platform /v2/health/ready', async () => (await statusOf(`${url}/v2/health/ready`)) === 200, timeoutMs, child);
    // The model routes answer (a 404 for an unknown model is fine) once the router is mounted.
    await pollUntil('platform /v2/models routes', async () => (await statusOf(`${url}/v2/models/__bench_probe__`)) < 500, timeoutMs, child);
  } catch (e) {
    const err = explain(e); // read the log before stop() removes it
    await stop();
    throw err;
  }

  const register = async (name: string, bytes: Uint8Array) => {
    const res = await fetch(`${url}/v1/models/${encodeURIComponent(name)}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array(bytes), // a copy typed over a plain ArrayBuffer, as fetch's BodyInit wants
    });
    if (res.status !== 201 && res.status !== 200) {
      throw explain(new Error(`register ${name}: HTTP ${res.status} ${await res.text()}`));
    }
    await res.arrayBuffer().catch(() => {});
    // Registration may finish on a worker (the engine checks the model); wait until it is served.
    await pollUntil(`model ${name}`, async () => (await statusOf(`${url}/v2/models/${encodeURIComponent(name)}`)) === 200, timeoutMs, child).catch((e) => {
      throw explain(e);
    });
  };

  // Matched by process title (what producer/main.ts and workers/main.ts set) or by script.
  const peakRss = () => ({
    producer: peaksOf(prefix, /modelq-producer|producer\/main\.ts/)[0] ?? 0,
    workers: peaksOf(prefix, /modelq-worker|workers\/main\.ts/),
  });
  const vmRss = (p: string) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const rssNow = () => ({
    producer: peaksOf(prefix, /modelq-producer|producer\/main\.ts/, vmRss)[0] ?? 0,
    workers: peaksOf(prefix, /modelq-worker|workers\/main\.ts/, vmRss),
  });
  const cpuSeconds = () =>
    [/modelq-producer|producer\/main\.ts/, /modelq-worker|workers\/main\.ts/]
      .flatMap((re) => peaksOf(prefix, re, (p) => cpuOf(fs.readFileSync(`/proc/${p}/stat`, 'utf8'))))
      .reduce((a, b) => a + b, 0);
  const cpuOfEach = (re: RegExp) => peaksOf(prefix, re, (p) => cpuOf(fs.readFileSync(`/proc/${p}/stat`, 'utf8')));
  const cpuByProcess = () => ({ producer: cpuOfEach(/modelq-producer|producer\/main\.ts/)[0] ?? 0, workers: cpuOfEach(/modelq-worker|workers\/main\.ts/) });
  // Per thread: /proc/<pid>/task/<tid>/stat; the main thread's tid is the pid (Node names every thread "node").
  const threadsOf = (p: string): Map<number, number> => {
    const m = new Map<number, number>();
    for (const t of fs.readdirSync(`/proc/${p}/task`)) {
      try {
        m.set(Number(t) === Number(p) ? -1 : Number(t), cpuOf(fs.readFileSync(`/proc/${p}/task/${t}/stat`, 'utf8')));
      } catch {
        // the thread ended meanwhile
      }
    }
    return m;
  };
  const cpuByThread = () => ({
    producer: peaksOf(prefix, /modelq-producer|producer\/main\.ts/, threadsOf)[0] ?? new Map<number, number>(),
    workers: peaksOf(prefix, /modelq-worker|workers\/main\.ts/, threadsOf),
  });
  return { url, grpcAddress: `127.0.0.1:${grpcPort}`, prefix, register, stop, peakRss, rssNow, cpuSeconds, cpuByProcess, cpuByThread };
}

/** Removes every key under the run's prefix (never FLUSHALL: the Redis may be shared). */
async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(process.env.MODELQ_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

// `npm start` for real: the launcher starts its own redis-server when none answers, runs producer,
// workers and dashboard, restarts a worker killed with SIGKILL, and stops everything on SIGTERM; a
// bad configuration stops it before anything starts; Ctrl-C (SIGINT to the whole process group, as
// a terminal sends it) drains a running batch chunk before everything exits 0.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { EXIT_CONFIG } from '../../core/config.ts';
import { batchKeys } from '../../core/jobs/batch.ts';
import { SAME_STOP_MS } from '../../core/signals.ts';
import { readWorkerStats } from '../../core/stats.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { tmpDir } from '../fixtures/models.ts';
import { deleteKeys, until, uploadModel } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start (cli/start.ts)', () => {
  it('runs the platform on its own redis-server, restarts a dead worker, stops on SIGTERM', async () => {
    const [redisPort, port, dashPort] = [await freePort(), await freePort(), await freePort()];
    const dataDir = tmpDir('modelq-launch');
    const prefix = `t-launch-${Math.random().toString(36).slice(2, 8)}`;
    const launcher = spawn(process.execPath, ['--import', 'tsx', 'cli/start.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        MODELQ_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        MODELQ_PORT: String(port),
        MODELQ_DASHBOARD_PORT: String(dashPort),
        MODELQ_GRPC_PORT: String(await freePort()),
        MODELQ_DATA_DIR: dataDir,
        MODELQ_PREFIX: prefix,
        MODELQ_WORKERS: '2',
        MODELQ_ENGINE_THREADS: '1',
        MODELQ_STATS_INTERVAL_MS: '200',
      },
    });
    const exited = new Promise<number | null>((r) => launcher.once('exit', (c) => r(c)));
    const lines: { t: number; msg?: string; role?: string; component?: string }[] = [];
    readline.createInterface({ input: launcher.stdout! }).on('line', (l) => {
      try {
        lines.push(JSON.parse(l));
      } catch {
        /* not a log line */
      }
    });
    launcher.stderr!.resume();
    const redis = new Redis(`redis://127.0.0.1:${redisPort}`, { lazyConnect: true, retryStrategy: () => 200 });
    redis.on('error', () => {});
    try {
      await until(async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`).catch(() => null))?.status === 200, 'producer ready', 120_000);
      await until(async () => (await fetch(`http://127.0.0.1:${dashPort}/healthz`).catch(() => null))?.status === 200, 'dashboard ready', 120_000);
      // The Redis it started keeps its files under the data dir.
      expect(fs.existsSync(path.join(dataDir, 'redis'))).toBe(true);
      await redis.connect();
      const key = `{${prefix}}`;
      const first = await until(
        async () => {
          const s = await readWorkerStats(redis, key);
          return s.length === 2 ? s : null;
        },
        'two workers',
        120_000,
      );
      const victim = first[0]!.pid;
      process.kill(victim, 'SIGKILL');
      const died = await until(() => lines.find((l) => l.msg?.includes('died')), 'the launcher to notice', 60_000);
      expect(died.role).toMatch(/^worker-/);
      const replaced = await until(
        async () => {
          const s = await readWorkerStats(redis, key);
          return s.some((w) => w.pid !== victim && !first.some((f) => f.pid === w.pid)) ? s : null;
        },
        'a replacement worker',
        120_000,
      );
      expect(replaced.map((w) => w.pid)).not.toContain(victim);

      const pids = replaced.map((w) => w.pid);
      launcher.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(pids.filter(alive)).toEqual([]);
      expect(lines.some((l) => l.component === 'launcher' && l.msg === 'stopped')).toBe(true);
      // The redis-server it started is gone too.
      expect(
        await new Promise((r) =>
          net
            .connect(redisPort, '127.0.0.1')
            .on('connect', () => r('open'))
            .on('error', () => r('closed')),
        ),
      ).toBe('closed');
    } finally {
      redis.disconnect();
      if (launcher.exitCode === null) launcher.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 300_000);

  it("starts its redis-server with the URL's password, and never prints the password", async () => {
    const [redisPort, port, dashPort] = [await freePort(), await freePort(), await freePort()];
    const dataDir = tmpDir('modelq-launch-pw');
    const password = 'pw-Secret-4711';
    const launcher = spawn(process.execPath, ['--import', 'tsx', 'cli/start.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        MODELQ_REDIS_URL: `redis://:${password}@127.0.0.1:${redisPort}`,
        MODELQ_PORT: String(port),
        MODELQ_DASHBOARD_PORT: String(dashPort),
        MODELQ_GRPC_PORT: String(await freePort()), // npm start checks its ports first: not the default, which another run may hold
        MODELQ_DATA_DIR: dataDir,
        MODELQ_PREFIX: `t-launch-${Math.random().toString(36).slice(2, 8)}`,
        MODELQ_WORKERS: '0',
      },
    });
    let out = '';
    launcher.stdout!.on('data', (b) => (out += b));
    launcher.stderr!.on('data', (b) => (out += b));
    const exited = new Promise<number | null>((r) => launcher.once('exit', (c) => r(c)));
    try {
      await until(async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`).catch(() => null))?.status === 200, 'producer ready', 120_000);
      // Without the password the started Redis answers nothing but NOAUTH.
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = net.connect(redisPort, '127.0.0.1', () => sock.write('PING\r\n'));
        sock
          .once('data', (b) => {
            resolve(String(b));
            sock.destroy();
          })
          .once('error', reject);
      });
      expect(answer).toMatch(/^-NOAUTH/);
      launcher.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).not.toContain(password);
    } finally {
      if (launcher.exitCode === null) launcher.kill('SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 300_000);

  it('masks the password when nothing answers at a remote MODELQ_REDIS_URL', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/start.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        MODELQ_REDIS_URL: 'redis://:pw-Secret-4711@nothing.invalid:6390',
        // Free ports: npm start checks them before Redis, and the defaults may be held by another run.
        MODELQ_PORT: String(await freePort()),
        MODELQ_DASHBOARD_PORT: String(await freePort()),
        MODELQ_GRPC_PORT: String(await freePort()),
      },
    });
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', (b) => (out += b));
    expect(await new Promise((r) => child.once('exit', r))).toBe(1);
    expect(out).toMatch(/nothing answers at MODELQ_REDIS_URL=redis:\/\/:\*\*\*@nothing\.invalid:6390/);
    expect(out).not.toContain('pw-Secret-4711');
  });

  it('a 10-character API key stops npm start before anything starts, naming the key rule, exit 78', async () => {
    const child = spawn('npm', ['start'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        MODELQ_API_KEYS: JSON.stringify({ '0123456789': { tenant: 'team', scopes: ['read'] } }),
        MODELQ_PORT: String(await freePort()),
        MODELQ_DASHBOARD_PORT: String(await freePort()),
        MODELQ_GRPC_PORT: String(await freePort()),
        MODELQ_PREFIX: `t-launch-${Math.random().toString(36).slice(2, 8)}`,
      },
    });
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', (b) => (out += b));
    expect(await new Promise((r) => child.once('exit', r))).toBe(EXIT_CONFIG);
    expect(out).toMatch(/MODELQ_API_KEYS: every key must be at least 16 characters long \(one has 10\)/);
    expect(out).not.toContain('0123456789');
    // Nothing was started, so nothing could be restarted.
    expect(out).not.toMatch(/"component":"(producer|worker|dashboard)"|modelq started|restarting/);
  });

  it('SIGINT to the process group (Ctrl-C) lets a running batch chunk finish, then every process exits 0', async () => {
    const run = await startWithRunningChunk(20_000);
    const { launcher, exited, lines, redis, key, id, n, pids, dataDir } = run;
    try {
      process.kill(-launcher.pid!, 'SIGINT');
      expect(await exited).toBe(0);

      // The chunk finished: its outcome is recorded and its output part holds every row, in order.
      expect(JSON.parse((await redis.hget(`${key}:records:batch:${id}:chunks`, '0'))!)).toEqual({ completed: n, failed: 0, ms: expect.any(Number) });
      const part = fs
        .readFileSync(path.join(dataDir, batchKeys.output(id, 0)), 'utf8')
        .split('\n')
        .filter(Boolean);
      expect(part).toHaveLength(n);
      expect(JSON.parse(part[n - 1]!)).toMatchObject({ row: n - 1, id: n - 1 });
      // Every child stopped by itself with 0, none was killed, none took the echoes for a second Ctrl-C.
      const stopped = lines.filter((l) => l.component === 'launcher' && l.msg === 'child process stopped');
      expect(stopped.map((l) => l.role).sort()).toEqual(['dashboard', 'producer', 'worker-1']);
      expect(stopped.map((l) => l.code)).toEqual([0, 0, 0]);
      expect(lines.filter((l) => l.msg?.includes('second stop request') || l.msg?.includes('restarting'))).toEqual([]);
      expect(pids.filter(alive)).toEqual([]);
      expect(run.stderr()).not.toMatch(/Error/);
    } finally {
      await run.cleanup();
    }
  }, 400_000);

  it('a second Ctrl-C, a while after the first, stops everything at once: the chunk is left to be retried', async () => {
    const run = await startWithRunningChunk(60_000);
    const { launcher, exited, lines, redis, key, id, pids } = run;
    try {
      process.kill(-launcher.pid!, 'SIGINT');
      await until(() => lines.some((l) => l.component === 'worker' && l.msg === 'stop requested: finishing active jobs'), 'the worker to start draining');
      await new Promise((r) => setTimeout(r, SAME_STOP_MS + 200)); // later than the first Ctrl-C's echoes
      process.kill(-launcher.pid!, 'SIGINT');
      expect(await exited).toBe(130);
      expect(lines.some((l) => l.component === 'worker' && l.msg?.startsWith('second stop request'))).toBe(true);
      // Nothing was recorded for the interrupted chunk: it is still the queue's, to run again.
      expect(await redis.hget(`${key}:records:batch:${id}:chunks`, '0')).toBeNull();
      expect(pids.filter(alive)).toEqual([]);
    } finally {
      await run.cleanup();
    }
  }, 400_000);
});

/**
 * Runs `cli/start.ts` in a process group of its own (so the test can signal the group as a terminal
 * does) against the shared Redis, with one worker busy on one batch chunk of `n` rows through two
 * 2048-wide layers on one engine thread: seconds of work.
 */
async function startWithRunningChunk(n: number) {
  const [port, dashPort] = [await freePort(), await freePort()];
  const dataDir = tmpDir('modelq-launch-drain');
  const prefix = `t-launch-${Math.random().toString(36).slice(2, 8)}`;
  const key = `{${prefix}}`;
  const launcher = spawn(process.execPath, ['--import', 'tsx', 'cli/start.ts'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      MODELQ_REDIS_URL: 'redis://127.0.0.1:6379',
      MODELQ_PORT: String(port),
      MODELQ_DASHBOARD_PORT: String(dashPort),
      MODELQ_GRPC_PORT: String(await freePort()),
      MODELQ_DATA_DIR: dataDir,
      MODELQ_PREFIX: prefix,
      MODELQ_WORKERS: '1',
      MODELQ_ENGINE_THREADS: '1',
      MODELQ_SHUTDOWN_GRACE_MS: '120000',
    },
  });
  const exited = new Promise<number | null>((r) => launcher.once('exit', (c) => r(c)));
  const lines: { msg?: string; role?: string; code?: number | null; component?: string; pid?: number }[] = [];
  readline.createInterface({ input: launcher.stdout! }).on('line', (l) => {
    try {
      lines.push(JSON.parse(l));
    } catch {
      /* not a log line */
    }
  });
  let stderr = '';
  launcher.stderr!.on('data', (b) => (stderr += b));
  const redis = new Redis('redis://127.0.0.1:6379');
  const cleanup = async () => {
    if (launcher.exitCode === null && launcher.signalCode === null) process.kill(-launcher.pid!, 'SIGKILL');
    await deleteKeys(redis, key);
    redis.disconnect();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  try {
    await until(async () => (await fetch(`${url}/v2/health/ready`).catch(() => null))?.status === 200, 'producer ready', 120_000);
    await until(async () => (await fetch(`http://127.0.0.1:${dashPort}/healthz`).catch(() => null))?.status === 200, 'dashboard ready', 120_000);
    await until(async () => (await readWorkerStats(redis, key)).length === 1, 'the worker', 120_000);
    const F = 32;
    expect((await uploadModel(url, 'slow', buildMlp({ sizes: [F, 2048, 2048, 4], seed: 5 }))).status).toBe(201);
    const row = (i: number) => JSON.stringify({ id: i, input: Array.from({ length: F }, (_, j) => ((i + j) % 10) / 10) });
    const res = await fetch(`${url}/v1/batches?model=slow&chunkRows=${n}`, { method: 'POST', body: Array.from({ length: n }, (_, i) => row(i)).join('\n') });
    expect(res.status).toBe(202);
    const id = (await res.json()).id as string;
    // The chunk is running: it has reported rows done, and no outcome yet.
    await until(async () => Number((await redis.hget(`${key}:records:batch:${id}:progress`, '0')) ?? 0) > 0, 'the chunk to be running', 120_000);
    expect(await redis.hget(`${key}:records:batch:${id}:chunks`, '0')).toBeNull();
    const pids = [...new Set(lines.filter((l) => l.component && l.component !== 'launcher').map((l) => l.pid!))];
    expect(pids.length).toBeGreaterThanOrEqual(3); // producer, worker, dashboard
    return { launcher, exited, lines, redis, key, id, n, pids, dataDir, stderr: () => stderr, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

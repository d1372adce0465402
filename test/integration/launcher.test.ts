// `npm start` for real: the launcher starts its own redis-server when none answers, runs producer,
// workers and dashboard, restarts a worker killed with SIGKILL, and stops everything on SIGTERM.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { readWorkerStats } from '../../core/stats.ts';
import { tmpDir } from '../fixtures/models.ts';
import { until } from '../helpers/platform.ts';

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
      await until(async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`).catch(() => null))?.status === 200, 'producer ready', 30_000);
      await until(async () => (await fetch(`http://127.0.0.1:${dashPort}/healthz`).catch(() => null))?.status === 200, 'dashboard ready', 30_000);
      // The Redis it started keeps its files under the data dir.
      expect(fs.existsSync(path.join(dataDir, 'redis'))).toBe(true);
      await redis.connect();
      const key = `{${prefix}}`;
      const first = await until(async () => {
        const s = await readWorkerStats(redis, key);
        return s.length === 2 ? s : null;
      }, 'two workers');
      const victim = first[0]!.pid;
      process.kill(victim, 'SIGKILL');
      const died = await until(() => lines.find((l) => l.msg?.includes('died')), 'the launcher to notice');
      expect(died.role).toMatch(/^worker-/);
      const replaced = await until(
        async () => {
          const s = await readWorkerStats(redis, key);
          return s.some((w) => w.pid !== victim && !first.some((f) => f.pid === w.pid)) ? s : null;
        },
        'a replacement worker',
        30_000,
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
  });

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
      await until(async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`).catch(() => null))?.status === 200, 'producer ready', 30_000);
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
  });

  it('masks the password when nothing answers at a remote MODELQ_REDIS_URL', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/start.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MODELQ_REDIS_URL: 'redis://:pw-Secret-4711@nothing.invalid:6390' },
    });
    let out = '';
    child.stdout!.on('data', (b) => (out += b));
    child.stderr!.on('data', (b) => (out += b));
    expect(await new Promise((r) => child.once('exit', r))).toBe(1);
    expect(out).toMatch(/nothing answers at MODELQ_REDIS_URL=redis:\/\/:\*\*\*@nothing\.invalid:6390/);
    expect(out).not.toContain('pw-Secret-4711');
  });
});

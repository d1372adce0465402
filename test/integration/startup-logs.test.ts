// Start-up as an operator sees it (#29 items 3 and 7): a misspelled MODELQ_* key stops the producer
// and `npm start` with exit 78 naming the key meant; readable log lines by default on a terminal
// (MODELQ_LOG_FORMAT=pretty here, as stdout is a pipe), naming the Redis with its password masked;
// access/audit lines in their own file (MODELQ_AUDIT_LOG); MODELQ_LOG_FORMAT=json keeps JSON lines.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { keyPrefix, loadConfig } from '../../core/config.ts';
import { tmpDir } from '../fixtures/models.ts';
import { deleteKeys, testEnv as baseEnv } from '../helpers/platform.ts';

// Each process gets its own prefix and data dir; all are removed at the end.
const envs: Record<string, string>[] = [];
const testEnv = () => {
  const e = baseEnv();
  envs.push(e);
  return e;
};
afterAll(async () => {
  const redis = new Redis();
  for (const e of envs) {
    await deleteKeys(redis, keyPrefix(loadConfig(e)));
    fs.rmSync(e.MODELQ_DATA_DIR!, { recursive: true, force: true });
  }
  redis.disconnect();
});

const ROOT = path.resolve(import.meta.dirname, '../..');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function run(main: string, env: Record<string, string>) {
  const { MODELQ_URL: _u, MODELQ_API_KEY: _k, ...parent } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', main], { cwd: ROOT, env: { ...parent, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: string[] = [];
  let err = '';
  readline.createInterface({ input: child.stdout! }).on('line', (l) => out.push(l));
  child.stderr!.on('data', (b) => (err += b));
  const exited = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
  return { child, out, stderr: () => err, exited };
}

async function until(check: () => boolean, what: string) {
  const end = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('a misspelled MODELQ_* key', () => {
  it.each(['producer/main.ts', 'cli/start.ts'])(
    'stops %s with exit 78 naming the key meant',
    async (main) => {
      const p = run(main, { ...testEnv(), MODELQ_WORKER: '4' });
      expect(await p.exited).toBe(78);
      expect(p.stderr()).toMatch(/MODELQ_WORKER: not a configuration key; did you mean MODELQ_WORKERS\?/);
    },
    60_000,
  );
});

describe('producer logs', () => {
  it('are readable lines naming the masked Redis, with audit lines in MODELQ_AUDIT_LOG only', async () => {
    const dir = tmpDir('modelq-logs');
    const audit = path.join(dir, 'audit.log');
    const port = await freePort();
    const p = run('producer/main.ts', {
      ...testEnv(),
      MODELQ_PORT: String(port),
      MODELQ_LOG_LEVEL: 'info',
      MODELQ_LOG_FORMAT: 'pretty',
      MODELQ_AUDIT_LOG: audit,
      MODELQ_REDIS_URL: 'redis://:s3cret-pw@127.0.0.1:6379',
    });
    try {
      await until(() => p.out.some((l) => l.includes('producer listening')), 'the producer to listen');
      // A state-changing call, audited (refused: the model does not exist).
      const r = await fetch(`http://127.0.0.1:${port}/v1/batches?model=nope`, {
        method: 'POST',
        body: '{"input":[1]}\n',
        headers: { 'content-type': 'application/x-ndjson' },
      });
      expect(r.status).toBe(404);
      await until(() => fs.existsSync(audit) && fs.readFileSync(audit, 'utf8').includes('/v1/batches'), 'the audit line');
      const line = p.out.find((l) => l.includes('producer listening'))!;
      expect(line).toMatch(/^\d\d:\d\d:\d\d INFO {2}producer: producer listening bind=127\.0\.0\.1 port=\d+ redis=redis:\/\/:\*\*\*@127\.0\.0\.1:6379/);
      const auditLine = JSON.parse(fs.readFileSync(audit, 'utf8').trim().split('\n').at(-1)!);
      expect(auditLine).toMatchObject({ audit: true, method: 'POST', route: '/v1/batches', status: 404 });
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      expect(p.out.filter((l) => l.startsWith('{'))).toEqual([]);
      expect(p.out.join('\n')).not.toMatch(/: audit\b|route=|s3cret/);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('are JSON lines, audit lines included, with MODELQ_LOG_FORMAT=json', async () => {
    const port = await freePort();
    const p = run('producer/main.ts', { ...testEnv(), MODELQ_PORT: String(port), MODELQ_LOG_LEVEL: 'info', MODELQ_LOG_FORMAT: 'json' });
    try {
      await until(() => p.out.some((l) => l.includes('producer listening')), 'the producer to listen');
      await fetch(`http://127.0.0.1:${port}/v1/batches?model=nope`, {
        method: 'POST',
        body: '{"input":[1]}\n',
        headers: { 'content-type': 'application/x-ndjson' },
      });
      await until(() => p.out.some((l) => l.includes('"audit"')), 'the audit line');
      const lines = p.out.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.find((l) => l.msg === 'producer listening')).toMatchObject({ component: 'producer', redis: expect.stringMatching(/^redis:\/\//) });
      expect(lines.find((l) => l.audit)).toMatchObject({ route: '/v1/batches', status: 404 });
    } finally {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }, 60_000);
});

describe('npm start (cli/start.ts) on a terminal', () => {
  it('prints a few readable lines: "modelq started" after the producer listens, naming the dashboard URL and the Redis', async () => {
    const [port, dash] = [await freePort(), await freePort()];
    const p = run('cli/start.ts', {
      ...testEnv(),
      MODELQ_PORT: String(port),
      MODELQ_DASHBOARD_PORT: String(dash),
      MODELQ_WORKERS: '0',
      MODELQ_LOG_LEVEL: 'info',
      MODELQ_LOG_FORMAT: 'pretty',
    });
    try {
      await until(() => p.out.some((l) => l.includes('modelq started')), 'modelq started');
      const started = p.out.findIndex((l) => l.includes('modelq started'));
      const listening = p.out.findIndex((l) => l.includes('producer listening'));
      expect(listening).toBeGreaterThanOrEqual(0);
      expect(listening).toBeLessThan(started);
      expect(p.out[started]).toMatch(
        new RegExp(
          `^\\d\\d:\\d\\d:\\d\\d INFO {2}launcher: modelq started producer=http://127\\.0\\.0\\.1:${port} dashboard=http://127\\.0\\.0\\.1:${dash} .*redis=redis://`,
        ),
      );
      await fetch(`http://127.0.0.1:${port}/v1/batches?model=nope`, { method: 'POST', body: '{}\n', headers: { 'content-type': 'application/x-ndjson' } });
      p.child.kill('SIGINT');
      expect(await p.exited).toBe(0);
      expect(p.out.filter((l) => l.startsWith('{'))).toEqual([]);
      expect(p.out.join('\n')).not.toMatch(/route=/);
      expect(p.out.length).toBeLessThan(20);
    } finally {
      if (p.child.exitCode === null) p.child.kill('SIGKILL');
    }
  }, 90_000);
});

// `npm start`: the whole platform on one machine. Producer, MODELQ_WORKERS worker processes and the
// dashboard run as child processes in this process group; a child that dies is restarted within a
// second; Ctrl-C or SIGTERM stops everything. Starts a local redis-server when none answers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadConfigOrExit, maskUrl } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const cfg = loadConfigOrExit();
const log = createLogger('launcher', cfg.MODELQ_LOG_LEVEL);
process.title = 'modelq';

async function pingRedis(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  r.on('error', () => {});
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Starts redis-server for this run when the configured URL is local and nothing answers there. */
async function ensureRedis(): Promise<ChildProcess | null> {
  if (await pingRedis(cfg.MODELQ_REDIS_URL)) return null;
  const url = new URL(cfg.MODELQ_REDIS_URL);
  const local = ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(url.hostname);
  const hasServer = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!local || !hasServer) {
    process.stderr.write(
      `modelq: nothing answers at MODELQ_REDIS_URL=${maskUrl(cfg.MODELQ_REDIS_URL)}${local ? ' and redis-server is not installed' : ''}.\n` +
        (local
          ? '  Install Redis 7 (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) and run npm start again,\n  or point MODELQ_REDIS_URL at a running Redis.\n'
          : '  Start that Redis or point MODELQ_REDIS_URL at a running one.\n'),
    );
    process.exit(1);
  }
  const user = decodeURIComponent(url.username);
  if (user && user !== 'default') {
    process.stderr.write(
      `modelq: MODELQ_REDIS_URL names the Redis user "${user}"; the redis-server npm start would start has only the default user.\n  Start that Redis yourself, or use redis://:<password>@... for a local one.\n`,
    );
    process.exit(1);
  }
  const dir = path.resolve(cfg.MODELQ_DATA_DIR, 'redis');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const port = url.port || '6379';
  log.info({ port, dir, password: url.password !== '' }, 'no Redis answered; starting redis-server for this run');
  const child = spawn(
    'redis-server',
    [
      writeRedisConf(dir, decodeURIComponent(url.password)),
      '--port',
      port,
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const deadline = Date.now() + 10_000;
  while (!(await pingRedis(cfg.MODELQ_REDIS_URL))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      process.stderr.write(`modelq: redis-server did not start (see above); its files are in ${dir}\n`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

/**
 * The started redis-server's config file: the URL's password, if any, as `requirepass` (in a file
 * only this user reads, rather than on a command line that `ps` shows).
 */
function writeRedisConf(dir: string, password: string): string {
  const file = path.join(dir, 'modelq-redis.conf');
  const quoted = `"${password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  fs.writeFileSync(file, password ? `requirepass ${quoted}\n` : '# no password: MODELQ_REDIS_URL names none\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

interface Role {
  name: string;
  file: string;
}
const roles: Role[] = [
  { name: 'producer', file: 'producer/main.ts' },
  ...Array.from({ length: cfg.MODELQ_WORKERS }, (_, i) => ({ name: `worker-${i + 1}`, file: 'workers/main.ts' })),
  { name: 'dashboard', file: 'dashboard/main.ts' },
];

const children = new Map<Role, ChildProcess>();
let stopping = false;

function start(role: Role) {
  const child = spawn(process.execPath, ['--import', 'tsx', role.file], { cwd: ROOT, stdio: 'inherit', env: process.env });
  children.set(role, child);
  child.on('exit', (code, signal) => {
    if (stopping) return;
    log.error({ role: role.name, code, signal }, 'child process died; restarting it');
    setTimeout(() => {
      if (!stopping) start(role);
    }, 250);
  });
}

const redisChild = await ensureRedis();
for (const r of roles) start(r);
log.info(
  { producer: `http://127.0.0.1:${cfg.MODELQ_PORT}`, dashboard: `http://127.0.0.1:${cfg.MODELQ_DASHBOARD_PORT}`, workers: cfg.MODELQ_WORKERS },
  'modelq started',
);

async function stop(sig: string) {
  if (stopping) return;
  stopping = true;
  log.info({ sig }, 'stopping all processes');
  const alive = [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null);
  const exits = alive.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of alive) c.kill('SIGTERM');
  const force = setTimeout(() => alive.forEach((c) => c.kill('SIGKILL')), cfg.MODELQ_SHUTDOWN_GRACE_MS + 5000);
  await Promise.all(exits);
  clearTimeout(force);
  if (redisChild && redisChild.exitCode === null) {
    const done = new Promise((r) => redisChild.once('exit', r));
    redisChild.kill('SIGTERM');
    await done;
  }
  log.info('stopped');
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

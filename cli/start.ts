// `npm start`: the whole platform on one machine. First the whole configuration is checked
// (cli/preflight.ts): any problem stops it before anything starts, every problem listed, exit 78.
// Producer, MODELQ_WORKERS worker processes and the dashboard run as child processes in this
// process group; a child that dies is restarted within a second, unless it stopped on its
// configuration (exit 78), which stops the platform. Ctrl-C (SIGINT), SIGTERM or SIGHUP drain
// everything (requests in flight and running jobs finish within MODELQ_SHUTDOWN_GRACE_MS), then
// exit 0; a second Ctrl-C exits at once. Starts a local redis-server when none answers.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { EXIT_CONFIG, exitOnConfigProblems, localUrlHost, maskUrl } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';
import { onStopSignals } from '../core/signals.ts';
import { childExitAction, preflight } from './preflight.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
process.title = 'modelq';
const checked = await preflight(process.env);
const cfg = checked.cfg ?? exitOnConfigProblems(checked.problems);
const log = createLogger('launcher', cfg.MODELQ_LOG_LEVEL);

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
    // Its own process group: a Ctrl-C meant for the platform must not stop Redis under the workers
    // while they drain; it is stopped last, by stop() below.
    { stdio: ['ignore', 'ignore', 'inherit'], detached: true },
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
let exitCode = 0;

function start(role: Role) {
  const child = spawn(process.execPath, ['--import', 'tsx', role.file], { cwd: ROOT, stdio: 'inherit', env: process.env });
  children.set(role, child);
  child.on('exit', (code, signal) => {
    if (stopping) {
      log.info({ role: role.name, code, signal }, 'child process stopped');
      return;
    }
    if (childExitAction(code) === 'stop') {
      log.fatal({ role: role.name, code }, 'child process stopped on its configuration (see above); not restarting it: stopping the platform');
      exitCode = EXIT_CONFIG;
      void stop('configuration');
      return;
    }
    log.error({ role: role.name, code, signal }, 'child process died; restarting it');
    setTimeout(() => {
      if (!stopping) start(role);
    }, 250);
  });
}

const redisChild = await ensureRedis();
for (const r of roles) start(r);

/** Resolves once something accepts connections at host:port: the producer is listening. */
async function listening(host: string, port: number): Promise<void> {
  for (;;) {
    const open = await new Promise<boolean>((r) => {
      const s = net.connect(port, host, () => s.end(() => r(true))).once('error', () => r(false));
    });
    if (open || stopping) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const host = localUrlHost(cfg.MODELQ_BIND);
// Not awaited: the stop signals below must be handled while the producer starts.
void listening(host, cfg.MODELQ_PORT).then(() => {
  if (stopping) return;
  log.info(
    {
      producer: `http://${host}:${cfg.MODELQ_PORT}`,
      dashboard: `http://${host}:${cfg.MODELQ_DASHBOARD_PORT}`,
      grpc: cfg.MODELQ_GRPC_PORT ? `${host}:${cfg.MODELQ_GRPC_PORT}` : 'off',
      redis: maskUrl(cfg.MODELQ_REDIS_URL),
      bind: cfg.MODELQ_BIND,
      workers: cfg.MODELQ_WORKERS,
    },
    'modelq started',
  );
});

const alive = () => [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null);

/**
 * Drains: each child gets one SIGTERM (one that got the terminal's SIGINT already counts the two as
 * one stop, core/signals.ts), finishes what it is doing within MODELQ_SHUTDOWN_GRACE_MS and exits;
 * then the redis-server this run started, if any.
 */
async function stop(why: string) {
  if (stopping) return;
  stopping = true;
  log.info({ why, graceMs: cfg.MODELQ_SHUTDOWN_GRACE_MS }, 'stopping all processes: finishing requests and jobs in flight');
  const running = alive();
  const exits = running.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of running) c.kill('SIGTERM');
  const force = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), cfg.MODELQ_SHUTDOWN_GRACE_MS + 5000);
  await Promise.all(exits);
  clearTimeout(force);
  await stopRedis();
  log.info('stopped');
  process.exit(exitCode);
}

async function stopRedis() {
  if (redisChild && redisChild.exitCode === null && redisChild.signalCode === null) {
    const done = new Promise((r) => redisChild.once('exit', r));
    redisChild.kill('SIGTERM');
    await done;
  }
}

/** A second Ctrl-C: every child exits at once (their active jobs are retried later), then Redis. */
async function stopNow(sig: string) {
  log.warn({ sig }, 'second stop request: stopping everything now');
  exitCode = 130;
  const running = alive();
  const exits = running.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of running) c.kill('SIGTERM');
  const force = setTimeout(() => running.forEach((c) => c.kill('SIGKILL')), 2000);
  await Promise.all(exits);
  clearTimeout(force);
  await stopRedis();
  process.exit(exitCode);
}

onStopSignals({ stop: (sig) => void stop(sig), now: (sig) => void stopNow(sig) }, ['SIGINT', 'SIGTERM', 'SIGHUP']);

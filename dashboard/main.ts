// Dashboard process: serves the results UI and bull-board (/queues) on MODELQ_DASHBOARD_PORT until
// SIGTERM/SIGINT; the UI's API calls go to the producer at MODELQ_PRODUCER_URL.
import type { Server } from 'node:http';
import { EXIT_CONFIG, exitOnConfigProblems, keyPrefix, loadConfigOrExit, localUrlHost, maskUrl } from '../core/config.ts';
import { installLastResort } from '../core/last-resort.ts';
import { createAuditLogger, createLogger } from '../core/logger.ts';
import { onStopSignals } from '../core/signals.ts';
import { Queues } from '../core/queues.ts';
import { createRedis, workerRedisOptions } from '../core/redis.ts';
import { buildDashboard } from './app.ts';
import { KeyRing } from '../core/auth.ts';

const cfg = loadConfigOrExit();
const log = createLogger('dashboard', cfg.MODELQ_LOG_LEVEL);
installLastResort(log);

// Retry forever like a worker: the board should come back by itself after a Redis restart.
const redis = createRedis(cfg, workerRedisOptions());
redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));

const queues = new Queues(keyPrefix(cfg), redis);
const keys = KeyRing.fromConfigOrExit(cfg);
if (keys.size === 0 && cfg.MODELQ_AUTH === 'required')
  exitOnConfigProblems(['MODELQ_AUTH=required but no API keys are configured (MODELQ_API_KEYS or MODELQ_API_KEYS_FILE)']);
const producerUrl = cfg.MODELQ_PRODUCER_URL ?? `http://${localUrlHost(cfg.MODELQ_BIND)}:${cfg.MODELQ_PORT}`;
const audit = createAuditLogger('dashboard', cfg.MODELQ_AUDIT_LOG, cfg.MODELQ_LOG_LEVEL);
const app = buildDashboard({ queues, redis, admin: cfg.MODELQ_DASHBOARD_ADMIN, keys, producerUrl, logger: audit });

const server: Server = app.listen(cfg.MODELQ_DASHBOARD_PORT, cfg.MODELQ_BIND, (err?: Error) => {
  if (err) {
    log.fatal(
      { err: err.message, bind: cfg.MODELQ_BIND, port: cfg.MODELQ_DASHBOARD_PORT },
      `cannot listen on MODELQ_BIND=${cfg.MODELQ_BIND} MODELQ_DASHBOARD_PORT=${cfg.MODELQ_DASHBOARD_PORT}`,
    );
    process.exit(EXIT_CONFIG);
  }
  log.info(
    {
      bind: cfg.MODELQ_BIND,
      port: cfg.MODELQ_DASHBOARD_PORT,
      producer: producerUrl,
      admin: cfg.MODELQ_DASHBOARD_ADMIN,
      prefix: keyPrefix(cfg),
      redis: maskUrl(cfg.MODELQ_REDIS_URL),
    },
    'dashboard listening',
  );
});

async function shutdown(signal: string): Promise<void> {
  log.info({ signal }, 'shutting down');
  // Open browser tabs poll the API over keep-alive; without this, close() waits for them.
  server.closeIdleConnections();
  // Event streams the pages follow never end by themselves: after the grace period, cut them.
  setTimeout(() => server.closeAllConnections(), cfg.MODELQ_SHUTDOWN_GRACE_MS).unref();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await queues.close();
  await redis.quit().catch(() => redis.disconnect());
  log.info('stopped');
  process.exit(0);
}

onStopSignals({
  stop: (signal) => {
    shutdown(signal).catch((err: unknown) => {
      log.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
      process.exit(1);
    });
  },
  now: (signal) => {
    log.warn({ signal }, 'second stop request: exiting now');
    process.exit(130);
  },
});

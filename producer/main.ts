// Producer process: the HTTP API on MODELQ_PORT. SIGTERM/SIGINT stop accepting, let requests in flight
// finish (up to MODELQ_SHUTDOWN_GRACE_MS), exit 0; a second signal later than the first one's echoes exits at once.
import { EXIT_CONFIG, exitOnConfigProblems, loadConfigOrExit, maskUrl } from '../core/config.ts';
import { KeyRing } from '../core/auth.ts';
import { installLastResort } from '../core/last-resort.ts';
import { createAuditLogger, createLogger } from '../core/logger.ts';
import { onStopSignals } from '../core/signals.ts';
import { buildApp } from './app.ts';
import { startGrpcServer } from './grpc/server.ts';
import { closeProducerDeps, createProducerDeps } from './deps.ts';
import { stopDraining } from './http.ts';

process.title = 'modelq-producer';
const cfg = loadConfigOrExit();
const logger = createLogger('producer', cfg.MODELQ_LOG_LEVEL);
installLastResort(logger);
const keys = KeyRing.fromConfigOrExit(cfg);
if (keys.size === 0) {
  if (cfg.MODELQ_AUTH === 'required') exitOnConfigProblems(['MODELQ_AUTH=required but no API keys are configured (MODELQ_API_KEYS or MODELQ_API_KEYS_FILE)']);
  logger.warn('NO API KEYS CONFIGURED: the API is open to anyone who can reach it. Set MODELQ_API_KEYS (and MODELQ_AUTH=required) before exposing it.');
}
let deps;
try {
  deps = await createProducerDeps(cfg, logger);
} catch (e) {
  logger.fatal({ err: maskUrl((e as Error).message), redis: maskUrl(cfg.MODELQ_REDIS_URL) }, 'cannot reach Redis; is redis-server running?');
  process.exit(1);
}
deps.audit = createAuditLogger('producer', cfg.MODELQ_AUDIT_LOG, cfg.MODELQ_LOG_LEVEL);
// MODELQ_BIND, loopback by default: an install is not on the network until someone says so.
const server = buildApp(deps).listen(cfg.MODELQ_PORT, cfg.MODELQ_BIND, () =>
  logger.info(
    { bind: cfg.MODELQ_BIND, port: cfg.MODELQ_PORT, redis: maskUrl(cfg.MODELQ_REDIS_URL), audit: cfg.MODELQ_AUDIT_LOG || undefined },
    'producer listening',
  ),
);
server.on('error', (e: NodeJS.ErrnoException) => {
  // A port in use or not allowed: the same on every restart, so a configuration error.
  logger.fatal(
    { err: e.message, bind: cfg.MODELQ_BIND, port: cfg.MODELQ_PORT },
    `cannot listen on MODELQ_BIND=${cfg.MODELQ_BIND} MODELQ_PORT=${cfg.MODELQ_PORT}`,
  );
  process.exit(EXIT_CONFIG);
});
server.keepAliveTimeout = 65_000;
const grpcServer =
  cfg.MODELQ_GRPC_PORT === 0
    ? null
    : await startGrpcServer(deps, { port: cfg.MODELQ_GRPC_PORT, keys }).catch((e: Error) => {
        logger.fatal({ err: e.message, port: cfg.MODELQ_GRPC_PORT }, 'cannot listen for gRPC (MODELQ_GRPC_PORT; 0 turns it off)');
        process.exit(EXIT_CONFIG);
      });
if (grpcServer) logger.info({ bind: cfg.MODELQ_BIND, port: grpcServer.port }, 'grpc listening');

onStopSignals({
  stop: (sig) => {
    logger.info({ sig, graceMs: cfg.MODELQ_SHUTDOWN_GRACE_MS }, 'stopping: no new connections, finishing requests in flight');
    const grpcClosed = grpcServer?.close();
    stopDraining();
    server.close(
      () =>
        void Promise.resolve(grpcClosed)
          .then(() => closeProducerDeps(deps))
          .finally(() => {
            logger.info('stopped');
            process.exit(0);
          }),
    );
    // Keep-alive connections become idle as their last request is answered: close each then.
    server.closeIdleConnections();
    setInterval(() => server.closeIdleConnections(), 100).unref();
    setTimeout(() => {
      logger.warn({ graceMs: cfg.MODELQ_SHUTDOWN_GRACE_MS }, 'requests outlived the grace period; exiting anyway');
      process.exit(0);
    }, cfg.MODELQ_SHUTDOWN_GRACE_MS).unref();
  },
  now: (sig) => {
    logger.warn({ sig }, 'second stop request: exiting now');
    process.exit(130);
  },
});

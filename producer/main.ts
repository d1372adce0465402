// Producer process: the HTTP API on MODELQ_PORT. SIGTERM/SIGINT stop accepting, finish requests, exit 0.
import { loadConfigOrExit, maskUrl } from '../core/config.ts';
import { KeyRing } from '../core/auth.ts';
import { installLastResort } from '../core/last-resort.ts';
import { createLogger } from '../core/logger.ts';
import { buildApp } from './app.ts';
import { startGrpcServer } from './grpc/server.ts';
import { closeProducerDeps, createProducerDeps } from './deps.ts';

process.title = 'modelq-producer';
const cfg = loadConfigOrExit();
const logger = createLogger('producer', cfg.MODELQ_LOG_LEVEL);
installLastResort(logger);
const keys = KeyRing.fromConfigOrExit(cfg);
if (keys.size === 0) {
  if (cfg.MODELQ_AUTH === 'required') {
    process.stderr.write('modelq: MODELQ_AUTH=required but no API keys are configured (MODELQ_API_KEYS or MODELQ_API_KEYS_FILE)\n');
    process.exit(1);
  }
  logger.warn('NO API KEYS CONFIGURED: the API is open to anyone who can reach it. Set MODELQ_API_KEYS (and MODELQ_AUTH=required) before exposing it.');
}
let deps;
try {
  deps = await createProducerDeps(cfg, logger);
} catch (e) {
  logger.fatal({ err: maskUrl((e as Error).message), redis: maskUrl(cfg.MODELQ_REDIS_URL) }, 'cannot reach Redis; is redis-server running?');
  process.exit(1);
}
const server = buildApp(deps).listen(cfg.MODELQ_PORT, () => logger.info({ port: cfg.MODELQ_PORT }, 'producer listening'));
server.keepAliveTimeout = 65_000;
const grpcServer =
  cfg.MODELQ_GRPC_PORT === 0
    ? null
    : await startGrpcServer(deps, { port: cfg.MODELQ_GRPC_PORT, keys }).catch((e: Error) => {
        logger.fatal({ err: e.message, port: cfg.MODELQ_GRPC_PORT }, 'cannot listen for gRPC (MODELQ_GRPC_PORT; 0 turns it off)');
        process.exit(1);
      });
if (grpcServer) logger.info({ port: grpcServer.port }, 'grpc listening');

const stop = () => {
  logger.info('stopping');
  const grpcClosed = grpcServer?.close();
  server.close(
    () =>
      void Promise.resolve(grpcClosed)
        .then(() => closeProducerDeps(deps))
        .finally(() => process.exit(0)),
  );
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10_000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

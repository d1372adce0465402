// Producer process: the HTTP API on MODELQ_PORT. SIGTERM/SIGINT stop accepting, finish requests, exit 0.
import { loadConfigOrExit, maskUrl } from '../core/config.ts';
import { KeyRing } from '../core/auth.ts';
import { installLastResort } from '../core/last-resort.ts';
import { createLogger } from '../core/logger.ts';
import { buildApp } from './app.ts';
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

const stop = () => {
  logger.info('stopping');
  server.close(() => void closeProducerDeps(deps).finally(() => process.exit(0)));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10_000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

// Worker process: consumes the queues in MODELQ_QUEUES with the engine on MODELQ_DEVICE.
// SIGTERM/SIGINT: take no new jobs, finish the active ones, exit 0.
import { loadConfigOrExit } from '../core/config.ts';
import { installLastResort } from '../core/last-resort.ts';
import { createLogger } from '../core/logger.ts';
import { startWorker } from './worker.ts';

process.title = 'modelq-worker';
const cfg = loadConfigOrExit();
const logger = createLogger('worker', cfg.MODELQ_LOG_LEVEL);
installLastResort(logger);

const running = await startWorker(cfg, logger);
let signals = 0;
const onSignal = (sig: string) => {
  signals++;
  if (signals > 1) {
    logger.warn({ sig }, 'second signal: exiting now');
    process.exit(1);
  }
  running.stop().then(
    () => process.exit(0),
    (e) => {
      logger.error({ err: (e as Error).message }, 'error while stopping');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => onSignal('SIGTERM'));
process.on('SIGINT', () => onSignal('SIGINT'));

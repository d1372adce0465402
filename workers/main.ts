// Worker process: consumes the queues in MODELQ_QUEUES with the engine on MODELQ_DEVICE.
// SIGTERM/SIGINT: take no new jobs, finish the active ones (up to MODELQ_SHUTDOWN_GRACE_MS), exit 0;
// a second signal later than the first one's echoes (core/signals.ts) exits at once.
import { loadConfigOrExit } from '../core/config.ts';
import { installLastResort } from '../core/last-resort.ts';
import { createLogger } from '../core/logger.ts';
import { onStopSignals } from '../core/signals.ts';
import { startWorker } from './worker.ts';

process.title = 'modelq-worker';
const cfg = loadConfigOrExit();
const logger = createLogger('worker', cfg.MODELQ_LOG_LEVEL);
installLastResort(logger);

const running = await startWorker(cfg, logger);
onStopSignals({
  stop: (sig) => {
    logger.info({ sig, graceMs: cfg.MODELQ_SHUTDOWN_GRACE_MS }, 'stop requested: finishing active jobs');
    running.stop().then(
      () => process.exit(0),
      (e) => {
        logger.error({ err: (e as Error).message }, 'error while stopping');
        process.exit(1);
      },
    );
  },
  now: (sig) => {
    logger.warn({ sig }, 'second stop request: exiting now (active jobs will be retried)');
    process.exit(130);
  },
});

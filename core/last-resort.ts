// The last-resort policy of every long-running process: an error that nothing handled (an 'error'
// event without a listener, a rejected promise nobody awaited) leaves the process in an unknown
// state, so it is logged once and the process exits with EXIT_UNHANDLED; `npm start` (or the
// container's restart policy) starts a fresh one. Known failure paths must never get here: they
// are handled where they happen and tested.
import type { Logger } from './logger.ts';
import { maskUrl } from './config.ts';

/** Exit status after an unhandled error (EX_SOFTWARE): not a configuration error, so it is restarted. */
export const EXIT_UNHANDLED = 70;

export function installLastResort(logger: Logger, exit: (code: number) => void = (c) => process.exit(c)): void {
  let dying = false;
  const die = (kind: string, e: unknown) => {
    if (dying) return;
    dying = true;
    const err = e instanceof Error ? e : new Error(String(e));
    logger.fatal({ kind, err: maskUrl(err.message), stack: err.stack ? maskUrl(err.stack) : undefined }, `${kind}: exiting so that a fresh process takes over`);
    logger.flush?.();
    exit(EXIT_UNHANDLED);
  };
  process.on('uncaughtException', (e) => die('uncaughtException', e));
  process.on('unhandledRejection', (e) => die('unhandledRejection', e));
}

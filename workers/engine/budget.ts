// Budgets of the work an engine thread does: how long one task may hold its thread, and the errors
// a task gets when it overran its time, ran the thread out of memory, or died with it. A task that
// holds its thread too long or exhausts its heap cannot be interrupted from the outside, so the
// thread is terminated and replaced (thread-slot.ts); these errors say which limit did it.
import { AppError, type ErrorCode } from '../../core/errors.ts';

/** One task's time budget and the config key that set it (named in the error). */
export interface Budget {
  /** Most milliseconds the task may run on its thread once started. */
  timeoutMs: number;
  /** The setting that gave this budget, e.g. `MODELQ_CHUNK_TIMEOUT_MS`. */
  limit: string;
  /** Aborting stops the task: a started one by replacing its thread; the reason is the rejection. */
  signal?: AbortSignal;
}

export type FaultKind = 'time' | 'memory' | 'crash';

/**
 * A task that exceeded its budget or took its engine thread down. Not retryable by itself: the
 * same input would do it again; a batch chunk decides on retries itself (MODELQ_POISON_ATTEMPTS).
 */
export class EngineFault extends AppError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly fault: FaultKind,
  ) {
    super(code, message, false);
    this.name = 'EngineFault';
  }
}

export const timeFault = (b: Budget, what: string) =>
  new EngineFault('timeout', `${what} exceeded its time limit of ${b.timeoutMs} ms (${b.limit}); its engine thread was stopped and replaced`, 'time');

export const memoryFault = (memoryMb: number, what: string) =>
  new EngineFault(
    'payload_too_large',
    `${what} ran its engine thread out of memory (MODELQ_ENGINE_THREAD_MEMORY_MB=${memoryMb} MiB); the thread was replaced`,
    'memory',
  );

export const crashFault = (what: string, why: string) =>
  new EngineFault('internal', `${what} took its engine thread down (${why}); the thread was replaced`, 'crash');

/** Tasks that shared a replaced thread with the culprit: innocent, so worth another try. */
export const bystanderError = (why: string) =>
  new AppError('unavailable', `the engine thread was replaced (${why}) before this task finished; try again`, true);

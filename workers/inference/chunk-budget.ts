// The budget of one batch chunk on a worker: a deadline for the whole chunk
// (MODELQ_CHUNK_TIMEOUT_MS), the batch's cancel (or failure) noticed while the chunk runs, and the
// rule that a chunk which overran its budget, killed its engine thread or lost its worker is not
// tried forever (MODELQ_POISON_ATTEMPTS). Stopping the chunk aborts its engine tasks: a started
// one takes its thread with it (the thread is replaced), so a stuck parser cannot outlive its chunk.
import type { Job } from 'bullmq';
import { UnrecoverableError } from 'bullmq';
import type { BatchStore } from '../../core/batches.ts';
import { AppError, toFailedReason } from '../../core/errors.ts';
import { EngineFault, type Budget } from '../engine/budget.ts';

/** How often a running chunk reads its batch's status, to stop when the batch is cancelled or failed. */
const STATUS_POLL_MS = 1000;

export const DEFAULT_CHUNK_TIMEOUT_MS = 600_000;
export const DEFAULT_POISON_ATTEMPTS = 2;

/** The batch no longer wants this chunk: it was cancelled, or another chunk failed it. */
export class ChunkStopped extends AppError {
  constructor(readonly status: string) {
    super('conflict', `the batch is ${status}; the chunk stopped`);
  }
}

export class ChunkBudget {
  private readonly ac = new AbortController();
  private readonly deadline: number;
  private readonly timer: NodeJS.Timeout;
  private readonly poll: NodeJS.Timeout;
  private readonly detach: () => void;

  constructor(
    readonly chunk: { batchId: string; index: number },
    readonly timeoutMs: number,
    batches: Pick<BatchStore, 'status'>,
    parent?: AbortSignal,
  ) {
    this.deadline = performance.now() + timeoutMs;
    this.timer = setTimeout(
      () =>
        this.stop(
          new EngineFault(
            'timeout',
            `chunk ${chunk.index} exceeded its time limit of ${timeoutMs} ms (MODELQ_CHUNK_TIMEOUT_MS); its engine work was stopped`,
            'time',
          ),
        ),
      timeoutMs,
    );
    this.poll = setInterval(() => {
      batches.status(chunk.batchId).then(
        (s) => {
          if (s === 'cancelling' || s === 'cancelled' || s === 'failed' || s === null) this.stop(new ChunkStopped(s ?? 'gone'));
        },
        () => {}, // Redis trouble: the chunk's own writes will say so
      );
    }, STATUS_POLL_MS);
    const onParent = () => this.stop(new AppError('unavailable', 'chunk stopped by the worker (shutdown or cancelJob); it will run again', true));
    parent?.addEventListener('abort', onParent, { once: true });
    this.detach = () => parent?.removeEventListener('abort', onParent);
    if (parent?.aborted) onParent();
  }

  get signal(): AbortSignal {
    return this.ac.signal;
  }

  /** The reason the chunk was stopped, if it was. */
  get reason(): Error | undefined {
    return this.ac.signal.aborted ? (this.ac.signal.reason as Error) : undefined;
  }

  /** Throws the reason when the chunk was stopped (between its steps). */
  check(): void {
    if (this.ac.signal.aborted) throw this.ac.signal.reason as Error;
  }

  /**
   * What each engine task of the chunk gets. The chunk's own timer stops it at the deadline; the
   * watchdog's bound is the whole budget, a backstop should the timer's abort be missed.
   */
  task(): Budget {
    return { timeoutMs: this.timeoutMs, limit: 'MODELQ_CHUNK_TIMEOUT_MS', signal: this.ac.signal };
  }

  get remainingMs(): number {
    return Math.max(0, this.deadline - performance.now());
  }

  private stop(reason: Error) {
    if (!this.ac.signal.aborted) this.ac.abort(reason);
  }

  dispose(): void {
    clearTimeout(this.timer);
    clearInterval(this.poll);
    this.detach();
  }
}

type Attempts = Partial<Pick<Job, 'attemptsMade' | 'attemptsStarted'>>;

/**
 * Earlier starts of this chunk that never ended (the worker died or lost the job mid-chunk). Past
 * MODELQ_POISON_ATTEMPTS of them the chunk is presumed to take workers down and fails for good.
 */
export function lostStarts(job: Attempts): number {
  return Math.max(0, (job.attemptsStarted ?? 1) - 1 - (job.attemptsMade ?? 0));
}

export function lostTooOften(index: number, lost: number, max: number): UnrecoverableError {
  return new UnrecoverableError(
    toFailedReason(
      new AppError(
        'internal',
        `chunk ${index} was lost with its worker ${lost} times before it finished (more than MODELQ_POISON_ATTEMPTS=${max}): it may take workers down, so it is not tried again`,
      ),
    ),
  );
}

/**
 * A chunk's failure by its budget (time, memory, a crashed thread) as BullMQ should see it:
 * retried while attempts remain under MODELQ_POISON_ATTEMPTS, then unrecoverable. Other errors: null.
 */
export function budgetFailure(e: unknown, job: Attempts, max: number): Error | null {
  if (!(e instanceof EngineFault)) return null;
  const attempt = (job.attemptsMade ?? 0) + 1;
  if (attempt < max) return new Error(toFailedReason(new AppError(e.code, `${e.message} (attempt ${attempt} of ${max})`, true)));
  const tail = max > 1 ? ` (attempt ${attempt} of MODELQ_POISON_ATTEMPTS=${max}; not tried again)` : ' (MODELQ_POISON_ATTEMPTS=1; not tried again)';
  return new UnrecoverableError(toFailedReason(new AppError(e.code, e.message + tail)));
}

// Adds a job and waits for its return value, bounded by a timeout. A failed job comes back as the
// AppError its processor raised (its error data travels as the failure reason, core/errors.ts).
import type { Job, Queue, QueueEvents } from 'bullmq';
import { AppError, fromFailedReason } from '../core/errors.ts';

export async function awaitJob<T>(job: Job, events: QueueEvents, timeoutMs: number, what: string): Promise<T> {
  try {
    return (await job.waitUntilFinished(events, timeoutMs)) as T;
  } catch (e) {
    const msg = (e as Error).message ?? '';
    if (/timed out before finishing/.test(msg)) throw new AppError('timeout', `${what} timed out after ${timeoutMs} ms`);
    throw fromFailedReason(msg);
  }
}

export async function addAndAwait<T>(queue: Queue, events: QueueEvents, name: string, data: unknown, timeoutMs: number, what: string): Promise<T> {
  const job = await queue.add(name, data);
  return awaitJob<T>(job, events, timeoutMs, what);
}

interface Waiter {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Answers for many jobs of one queue through one pair of QueueEvents listeners. waitUntilFinished
 * adds three listeners and an isFinished round trip per job; here the caller picks the job id and
 * registers before adding the job, so its event cannot be missed and no check is needed. The
 * job's return value stays the source of truth: before giving up, the job itself is read once.
 */
export class JobAnswers {
  private readonly waiting = new Map<string, Waiter>();

  constructor(
    private readonly queue: Queue,
    events: QueueEvents,
  ) {
    events.on('completed', ({ jobId, returnvalue }) => this.take(jobId)?.resolve(returnvalue));
    events.on('failed', ({ jobId, failedReason }) => this.take(jobId)?.reject(fromFailedReason(failedReason)));
  }

  /** Resolves with the job's return value; register before adding the job. */
  wait<T>(jobId: string, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => void this.lastLook(jobId, timeoutMs, what), timeoutMs);
      this.waiting.set(jobId, { resolve: resolve as (v: unknown) => void, reject, timer });
    });
  }

  /** Stops waiting (the job could not be added). */
  cancel(jobId: string, e: Error) {
    this.take(jobId)?.reject(e);
  }

  private take(jobId: string): Waiter | undefined {
    const w = this.waiting.get(jobId);
    if (!w) return undefined;
    this.waiting.delete(jobId);
    clearTimeout(w.timer);
    return w;
  }

  // An event lost to a reconnect must not turn a finished job into a timeout.
  private async lastLook(jobId: string, timeoutMs: number, what: string) {
    const timeout = new AppError('timeout', `${what} timed out after ${timeoutMs} ms`);
    try {
      const state = await this.queue.getJobState(jobId);
      const job = state === 'completed' || state === 'failed' ? await this.queue.getJob(jobId) : undefined;
      const w = this.take(jobId);
      if (!w) return;
      if (job && state === 'completed') w.resolve(job.returnvalue);
      else if (job && state === 'failed') w.reject(fromFailedReason(job.failedReason));
      else w.reject(timeout);
    } catch {
      this.take(jobId)?.reject(timeout);
    }
  }
}

// Adds a job and waits for its return value, bounded by a timeout. A failed job comes back as the
// AppError its processor raised (its error data travels as the failure reason, core/errors.ts).
import type { Job, Queue, QueueEvents } from 'bullmq';
import { AppError, fromFailedReason } from '../../core/errors.ts';
import { loadProgressSchema } from '../../core/jobs/infer.ts';
import { Overloaded } from './backpressure.ts';

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
  /** When the answer is due: registration + timeout + the model loads reported by the worker. */
  due: number;
  timeoutMs: number;
  what: string;
  /** Set while the worker reports that it is loading the job's model: since when, and which. */
  loading?: { since: number; model: string };
}

/** Seconds a client is asked to wait for a model that is still loading: about as long as it has loaded so far. */
export const loadRetryAfterS = (loadingMs: number) => Math.min(30, Math.max(1, Math.ceil(loadingMs / 1000)));

/**
 * Answers for many jobs of one queue through one pair of QueueEvents listeners. waitUntilFinished
 * adds three listeners and an isFinished round trip per job; here the caller picks the job id and
 * registers before adding the job, so its event cannot be missed and no check is needed. The
 * job's return value stays the source of truth: before giving up, the job itself is read once.
 *
 * A worker that has to load the job's model first says so in the job's progress (loadProgressSchema):
 * the load's duration is added to the timeout, and a timeout that passes while the load is still
 * going is a 503 with Retry-After (the model will be there soon), not a 504.
 */
export class JobAnswers {
  private readonly waiting = new Map<string, Waiter>();

  constructor(
    private readonly queue: Queue,
    events: QueueEvents,
  ) {
    events.on('completed', ({ jobId, returnvalue }) => this.take(jobId)?.resolve(returnvalue));
    events.on('failed', ({ jobId, failedReason }) => this.take(jobId)?.reject(fromFailedReason(failedReason)));
    events.on('progress', ({ jobId, data }) => this.progress(jobId, data));
  }

  private progress(jobId: string, data: unknown) {
    const w = this.waiting.get(jobId);
    if (!w) return;
    const p = loadProgressSchema.safeParse(data);
    if (!p.success) return;
    if ('loading' in p.data) {
      w.loading = { since: Date.now(), model: p.data.model };
      return;
    }
    if (!w.loading) return;
    // The load is over: the time it took does not count, so the answer is due that much later.
    w.due += Date.now() - w.loading.since;
    w.loading = undefined;
    clearTimeout(w.timer);
    w.timer = setTimeout(() => void this.lastLook(jobId), Math.max(0, w.due - Date.now()));
  }

  /** Resolves with the job's return value; register before adding the job. */
  wait<T>(jobId: string, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => void this.lastLook(jobId), timeoutMs);
      this.waiting.set(jobId, { resolve: resolve as (v: unknown) => void, reject, timer, due: Date.now() + timeoutMs, timeoutMs, what });
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
  private async lastLook(jobId: string) {
    const waiting = this.waiting.get(jobId);
    if (!waiting) return;
    const { timeoutMs, what } = waiting;
    const timeout = () => {
      const loading = waiting.loading;
      if (!loading) return new AppError('timeout', `${what} timed out after ${timeoutMs} ms`);
      const ms = Date.now() - loading.since;
      return new Overloaded(
        'unavailable',
        `model ${loading.model} is still loading on a worker (for ${Math.round(ms / 1000)} s); retry shortly`,
        loadRetryAfterS(ms),
      );
    };
    try {
      const state = await this.queue.getJobState(jobId);
      const job = state === 'completed' || state === 'failed' || (state === 'active' && !waiting.loading) ? await this.queue.getJob(jobId) : undefined;
      const w = this.take(jobId);
      if (!w) return;
      if (job && state === 'completed') w.resolve(job.returnvalue);
      else if (job && state === 'failed') w.reject(fromFailedReason(job.failedReason));
      else {
        // A load reported in the job's progress whose event has not arrived yet counts the same.
        const p = job ? loadProgressSchema.safeParse(job.progress) : undefined;
        if (p?.success && 'loading' in p.data) w.loading = { since: Math.min(Date.now(), p.data.loading), model: p.data.model };
        w.reject(timeout());
      }
    } catch {
      this.take(jobId)?.reject(timeout());
    }
  }
}

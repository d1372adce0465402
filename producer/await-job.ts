// Adds a job and waits for its return value, bounded by a timeout. A failed job comes back as the
// AppError its processor raised (the code travels in the failure reason).
import type { Job, Queue, QueueEvents } from 'bullmq';
import { AppError, decodeJobError } from '../core/errors.ts';

export async function awaitJob<T>(job: Job, events: QueueEvents, timeoutMs: number, what: string): Promise<T> {
  try {
    return (await job.waitUntilFinished(events, timeoutMs)) as T;
  } catch (e) {
    const msg = (e as Error).message ?? '';
    if (/timed out before finishing/.test(msg)) throw new AppError('timeout', `${what} timed out after ${timeoutMs} ms`);
    throw decodeJobError(msg);
  }
}

export async function addAndAwait<T>(queue: Queue, events: QueueEvents, name: string, data: unknown, timeoutMs: number, what: string): Promise<T> {
  const job = await queue.add(name, data);
  return awaitJob<T>(job, events, timeoutMs, what);
}

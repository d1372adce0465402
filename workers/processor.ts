// Shared processor plumbing: validate job data at start (jobs outlive code) and map errors to
// BullMQ's control flow: bad input / bad model fail at once, transient trouble is retried.
import { UnrecoverableError } from 'bullmq';
import type { z } from 'zod';
import { AppError, toFailedReason } from '../core/errors.ts';

export function parseJobData<S extends z.ZodType>(schema: S, data: unknown, kind: string): z.output<S> {
  const r = schema.safeParse(data);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new UnrecoverableError(toFailedReason(new AppError('bad_request', `${kind} job data ${issue.path.join('.') || '(root)'}: ${issue.message}`)));
  }
  return r.data;
}

/**
 * Rethrows an error the way BullMQ should see it: an AppError becomes its error data (code,
 * message, retryable) as the failed job's reason, and fails at once unless it is retryable.
 */
export function toJobError(e: unknown): Error {
  if (e instanceof UnrecoverableError) return e;
  if (e instanceof AppError) return e.retryable ? new Error(toFailedReason(e)) : new UnrecoverableError(toFailedReason(e));
  if (e instanceof Error) {
    // A job's failure is shown to the client: it may say what is missing, never where on the server.
    const safe = withoutPaths(e.message);
    if (safe === e.message) return e;
    const copy = new Error(safe);
    copy.name = e.name;
    return copy;
  }
  return new Error(withoutPaths(String(e)));
}

/** "ENOENT: no such file or directory, open '/srv/data/batches/x/input'" -> "... open '.../input'". */
export const withoutPaths = (message: string) => message.replace(/(^|[\s'"(=])(?:[A-Za-z]:)?(?:[\\/][^\s'"\\/)]+)+[\\/]([^\s'"\\/)]+)/g, '$1.../$2');

// AppError carries a stable code, the HTTP status the producer answers with, and whether a job
// that hit it should be retried. Processors turn non-retryable ones into BullMQ UnrecoverableError.
import { z } from 'zod';

export const ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'invalid_model',
  'not_found',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'timeout',
  'unavailable',
  'internal',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  rate_limited: 429,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  invalid_model: 422,
  internal: 500,
  unavailable: 503,
  timeout: 504,
};

export class AppError extends Error {
  readonly httpStatus: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'AppError';
    this.httpStatus = STATUS[code] ?? 500;
  }
}

export const badRequest = (msg: string) => new AppError('bad_request', msg);
export const notFound = (msg: string) => new AppError('not_found', msg);

/**
 * An AppError as data, the form in which it crosses the queue: in a failed job's failedReason
 * (BullMQ keeps only an error's message, so the message is this object as JSON) and in the
 * per-request answers of an infer job.
 */
export const errorDataSchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  retryable: z.boolean().default(false),
});
export type ErrorData = z.output<typeof errorDataSchema>;

export const errorData = (e: AppError): ErrorData => ({ code: e.code, message: e.message, retryable: e.retryable });
export const fromErrorData = (d: ErrorData): AppError => new AppError(d.code, d.message, d.retryable);

/** The failedReason a worker gives a job that failed with `e`. */
export function toFailedReason(e: AppError): string {
  return JSON.stringify(errorData(e));
}

/**
 * The AppError a failed job's failedReason stands for. A reason that is not error data (an error
 * that was not an AppError, a job failed by BullMQ itself: stalled too often, lock lost) is an
 * internal error carrying the reason as its message.
 */
export function fromFailedReason(reason: string | undefined): AppError {
  if (reason?.startsWith('{')) {
    try {
      const r = errorDataSchema.safeParse(JSON.parse(reason));
      if (r.success) return fromErrorData(r.data);
    } catch {
      // not JSON after all: an ordinary message that starts with a brace
    }
  }
  return new AppError('internal', reason || 'job failed');
}

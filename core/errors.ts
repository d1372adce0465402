// AppError carries a stable code, the HTTP status the producer answers with, and whether a job
// that hit it should be retried. Processors turn non-retryable ones into BullMQ UnrecoverableError.
export type ErrorCode =
  | 'bad_request' | 'unauthorized' | 'forbidden' | 'invalid_model' | 'not_found' | 'conflict' | 'payload_too_large'
  | 'unsupported_media_type' | 'rate_limited' | 'timeout' | 'unavailable' | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400, unauthorized: 401, forbidden: 403, not_found: 404, rate_limited: 429, conflict: 409, payload_too_large: 413, unsupported_media_type: 415,
  invalid_model: 422, internal: 500, unavailable: 503, timeout: 504,
};

export class AppError extends Error {
  readonly httpStatus: number;
  constructor(readonly code: ErrorCode, message: string, readonly retryable = false) {
    super(message);
    this.name = 'AppError';
    this.httpStatus = STATUS[code] ?? 500;
  }
}

export const badRequest = (msg: string) => new AppError('bad_request', msg);
export const notFound = (msg: string) => new AppError('not_found', msg);

/** Prefix used when an AppError crosses the queue as a job's failedReason, so the producer can rebuild it. */
export function encodeJobError(e: AppError): string {
  return `[${e.code}] ${e.message}`;
}
export function decodeJobError(reason: string | undefined): AppError {
  const m = /^\[([a-z_]+)\] ([\s\S]*)$/.exec(reason ?? '');
  if (m && m[1]! in STATUS) return new AppError(m[1] as ErrorCode, m[2]!);
  return new AppError('internal', reason || 'job failed');
}

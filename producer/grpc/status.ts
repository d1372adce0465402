// The platform's error codes as gRPC status codes; anything unexpected is INTERNAL without its stack.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { AppError, type ErrorCode } from '../../core/errors.ts';
import type { ProducerDeps } from '../deps.ts';

const CODES: Record<ErrorCode, status> = {
  bad_request: status.INVALID_ARGUMENT,
  unauthorized: status.UNAUTHENTICATED,
  forbidden: status.PERMISSION_DENIED,
  invalid_model: status.FAILED_PRECONDITION,
  not_found: status.NOT_FOUND,
  conflict: status.ABORTED,
  payload_too_large: status.RESOURCE_EXHAUSTED,
  unsupported_media_type: status.INVALID_ARGUMENT,
  rate_limited: status.RESOURCE_EXHAUSTED,
  timeout: status.DEADLINE_EXCEEDED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/**
 * Trailers a client can act on, as REST's body and headers say them: `retryable` (whether the same
 * call may succeed later) and `retry-after` in seconds when the refusal names a time.
 */
function trailers(e: AppError): Metadata {
  const m = new Metadata();
  m.set('retryable', String(e.retryable));
  const after = (e as { retryAfterS?: number }).retryAfterS;
  if (after !== undefined) m.set('retry-after', String(after));
  return m;
}

export function toGrpcStatus(e: Error, d: Pick<ProducerDeps, 'redis' | 'logger'>): Partial<ServiceError> {
  if (e instanceof AppError) return { code: CODES[e.code] ?? status.INTERNAL, details: e.message, metadata: trailers(e) };
  // A Redis command that fails while the connection is down is a transient outage, not a bug.
  if (d.redis.status !== 'ready') return { code: status.UNAVAILABLE, details: 'Redis is unavailable; try again shortly' };
  d.logger.error({ err: e.message }, 'grpc request failed');
  return { code: status.INTERNAL, details: 'internal error' };
}

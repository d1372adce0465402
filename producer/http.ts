// HTTP plumbing shared by the routes: error bodies, the error middleware, zod validation at the edge.
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ErrorRequestHandler, Request, Response } from 'express';
import type { z } from 'zod';
import { AppError, badRequest } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { TooLargeError } from '../core/storage/index.ts';

/** Parses `value` with `schema`; a failure is a 400 naming the field. */
export function parseBody<S extends z.ZodType>(schema: S, value: unknown, what = 'body'): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const where = [what, ...issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join('').replace(/\.\[/g, '[');
  throw badRequest(`${where}: ${issue.message}`);
}

const isV2 = (req: Request) => req.path.startsWith('/v2');

/** Unread request bytes read (and dropped) before an error answer, so the client sees the answer rather than a reset. */
const DRAIN_BYTES = 1024 * 1024;
/** How long an error answer waits for those bytes. */
const DRAIN_MS = 2000;
/** Drains under way, each ended at once by stopDraining(): a refused upload is never work in flight. */
const draining = new Set<() => void>();
let drainStopped = false;

/**
 * Shutdown: every refused upload still being drained is answered now and its connection closed,
 * and later ones are not drained, so a stop never waits on bytes the platform has already refused.
 */
export function stopDraining(): void {
  drainStopped = true;
  for (const finish of [...draining]) finish();
}

export function sendError(req: Request, res: Response, e: AppError) {
  if (res.headersSent) return void res.end();
  const retryAfter = (e as { retryAfterS?: number }).retryAfterS;
  if (retryAfter !== undefined) res.setHeader('Retry-After', String(retryAfter));
  const send = () => void res.status(e.httpStatus).json(isV2(req) ? { error: e.message } : { error: { code: e.code, message: e.message } });
  if (req.complete) return send();
  // A body refused before it was read whole (a limit met mid-upload, a model checked first): the
  // connection cannot carry another request after it. Closing it with bytes unread makes the kernel
  // reset it, and a client still sending sees the reset, not the answer: up to DRAIN_BYTES more are
  // read first; a larger upload is answered at once and cut.
  res.setHeader('Connection', 'close');
  const declared = Number(req.headers['content-length']);
  if (drainStopped || declared > DRAIN_BYTES || req.destroyed || req.readableEnded) return send();
  let seen = 0;
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    draining.delete(finish);
    clearTimeout(timer);
    req.off('data', onData);
    send();
  };
  const onData = (c: Buffer) => {
    seen += c.length;
    if (seen > DRAIN_BYTES) finish();
  };
  const timer = setTimeout(finish, DRAIN_MS);
  draining.add(finish);
  req.on('data', onData).once('end', finish).once('error', finish).once('close', finish);
  req.resume();
}

function isRedisDown(e: unknown): boolean {
  const m = (e as Error)?.message ?? '';
  return /enableOfflineQueue|max retries per request|Connection is closed|ECONNREFUSED|Redis not ready/i.test(m);
}

/** What an error thrown by a route becomes: a known AppError, or the closest one; unknown errors are logged. */
export function toAppError(err: unknown, logger: Logger, route: string): AppError {
  const x = err as { type?: string; status?: unknown; message?: string; limit?: number; stack?: string } | undefined;
  if (err instanceof AppError) return err;
  if (err instanceof TooLargeError) return new AppError('payload_too_large', `body too large: the limit is ${err.maxBytes} bytes`);
  if (x?.type === 'entity.too.large') return new AppError('payload_too_large', `body too large: the limit is ${x.limit} bytes`);
  if (x?.type === 'entity.parse.failed') return badRequest(`body is not valid JSON: ${x.message}`);
  if (x?.type === 'encoding.unsupported' || x?.type === 'charset.unsupported') return new AppError('unsupported_media_type', String(x.message));
  if (typeof x?.status === 'number' && x.status >= 400 && x.status < 500) return new AppError('bad_request', String(x.message));
  if (isRedisDown(err)) return new AppError('unavailable', 'Redis is unavailable; try again shortly', true);
  logger.error({ err: x?.message, stack: x?.stack, route }, 'unhandled error');
  return new AppError('internal', 'internal error');
}

/** Maps anything thrown by a route to a status and a JSON body; never a stack trace. */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => sendError(req, res, toAppError(err, logger, req.path));
}

/**
 * Streams `body` as the response through `pipeline`: a client that goes away mid-download destroys
 * the source (a file descriptor, an S3 request) with it; `.pipe` would leave it paused and open
 * for good. Headers are out by then, so a failing source can only cut the connection short.
 * A download whose whole body was written (all of its Content-Length, or end() reached) is
 * complete even when the client closes the connection before the source has said it has no more
 * (pipeline then says "Premature close"): no warning for it. One cut short is one warning.
 */
export async function sendStream(res: Response, body: Readable, logger: Logger, what: Record<string, unknown>): Promise<void> {
  const declared = Number(res.getHeader('content-length') ?? NaN);
  let sent = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(body, count, res);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (!res.writableEnded && !(sent >= declared)) {
      const clientLeft = err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET' || err.code === 'EPIPE';
      logger.warn(
        { ...what, err: err.message, bytesSent: sent },
        clientLeft ? 'download cut short: the client closed the connection before the end' : 'download failed',
      );
    }
    res.destroy();
  }
}

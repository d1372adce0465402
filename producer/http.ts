// HTTP plumbing shared by the routes: error bodies, the error middleware, zod validation at the edge.
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

export function sendError(req: Request, res: Response, e: AppError) {
  if (res.headersSent) return void res.end();
  res.status(e.httpStatus).json(isV2(req) ? { error: e.message } : { error: { code: e.code, message: e.message } });
}

function isRedisDown(e: unknown): boolean {
  const m = (e as Error)?.message ?? '';
  return /enableOfflineQueue|max retries per request|Connection is closed|ECONNREFUSED|Redis not ready/i.test(m);
}

/** Maps anything thrown by a route to a status and a JSON body; never a stack trace. */
export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let e: AppError;
    if (err instanceof AppError) e = err;
    else if (err instanceof TooLargeError) e = new AppError('payload_too_large', `body too large: the limit is ${err.maxBytes} bytes`);
    else if (err?.type === 'entity.too.large') e = new AppError('payload_too_large', `body too large: the limit is ${err.limit} bytes`);
    else if (err?.type === 'entity.parse.failed') e = badRequest(`body is not valid JSON: ${err.message}`);
    else if (err?.type === 'encoding.unsupported' || err?.type === 'charset.unsupported') e = new AppError('unsupported_media_type', err.message);
    else if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500) e = new AppError('bad_request', String(err.message));
    else if (isRedisDown(err)) e = new AppError('unavailable', 'Redis is unavailable; try again shortly', true);
    else {
      logger.error({ err: err?.message, stack: err?.stack, route: req.path }, 'unhandled error');
      e = new AppError('internal', 'internal error');
    }
    sendError(req, res, e);
  };
}

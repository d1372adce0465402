// The OpenAI-compatible API under /openai/v1 (so `new OpenAI({ baseURL: ".../openai/v1", apiKey })`
// works unchanged): Files and Batches, with errors in OpenAI's shape { error: { message, type, param, code } }.
import { Router, type ErrorRequestHandler } from 'express';
import { AppError } from '../../core/errors.ts';
import { OpenaiStore } from '../../core/openai-batch.ts';
import type { ProducerDeps } from '../deps.ts';
import { batchesRouter } from './batches.ts';
import { filesRouter } from './files.ts';
import { OPENAI_BASE } from './base.ts';

export function openaiRouter(d: ProducerDeps): Router {
  const store = new OpenaiStore(d.redis, d.prefix);
  const r = Router();
  r.use(filesRouter(d, store), batchesRouter(d, store));
  const onError: ErrorRequestHandler = (err, req, res, next) => {
    if (!req.path.startsWith(`${OPENAI_BASE}/`) || !(err instanceof AppError) || res.headersSent) return next(err);
    const type = err.httpStatus < 500 ? 'invalid_request_error' : 'server_error';
    res.status(err.httpStatus).json({ error: { message: err.message, type, param: null, code: err.code } });
  };
  r.use(onError);
  return r;
}

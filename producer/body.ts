// JSON body parsing with the configured size limit; a wrong content type is a 415, not a silent {}.
import express, { type RequestHandler } from 'express';
import { AppError } from '../core/errors.ts';
import type { Config } from '../core/config.ts';

export function jsonBody(cfg: Pick<Config, 'MODELQ_MAX_REQUEST_MB'>): RequestHandler {
  const parse = express.json({ limit: cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024, strict: false });
  return (req, res, next) => {
    const hasBody = req.headers['content-length'] !== '0' && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined);
    if (hasBody && !req.is('application/json') && !req.is('+json')) {
      return next(new AppError('unsupported_media_type', `Content-Type must be application/json, got "${req.headers['content-type'] ?? 'none'}"`));
    }
    parse(req, res, next);
  };
}

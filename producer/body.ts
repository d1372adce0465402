// Request bodies. jsonBody: express's JSON parser with the configured size limit, where a wrong
// content type is a 415, not a silent {} (no content type at all is read as JSON when it is
// JSON). The inference body reader (isPlainJsonBody, readInferBody): one reader for both inference paths, the express route and the node:http fast path, that reads a
// plain JSON body of known length and parses it with parseInferJson (data arrays straight into
// Float32Arrays); anything else goes to jsonBody, so answers and errors stay the same.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import express, { type RequestHandler } from 'express';
import { AppError, badRequest } from '../core/errors.ts';
import type { Config } from '../core/config.ts';
import { parseInferJson } from './inference/infer-json.ts';

export function jsonBody(cfg: Pick<Config, 'MODELQ_MAX_REQUEST_MB'>): RequestHandler {
  const limit = cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024;
  const parse = express.json({ limit, strict: false });
  // A body sent with no Content-Type at all (a script's bare POST) is read as JSON all the same;
  // only when it does not parse is the missing type the thing to name (415, as for a wrong type).
  const untyped = express.json({ limit, strict: false, type: () => true });
  const wrongType = (req: { headers: IncomingHttpHeaders }) =>
    new AppError('unsupported_media_type', `Content-Type must be application/json, got "${req.headers['content-type'] ?? 'none'}"`);
  return (req, res, next) => {
    const hasBody = req.headers['content-length'] !== '0' && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined);
    if (hasBody && req.headers['content-type'] === undefined) {
      return untyped(req, res, (err?: unknown) => next((err as { type?: string } | undefined)?.type === 'entity.parse.failed' ? wrongType(req) : err));
    }
    if (hasBody && !req.is('application/json') && !req.is('+json')) return next(wrongType(req));
    parse(req, res, next);
  };
}

const UTF8_JSON = /^application\/json\s*;\s*charset="?utf-8"?\s*$/i;

/**
 * The body length when the request carries a plain JSON body the inference reader takes:
 * `application/json` in UTF-8, not compressed, not chunked, a known length within `limitBytes`;
 * undefined otherwise (other JSON types or charsets, compressed, chunked, empty, over the limit).
 */
export function plainJsonLength(h: IncomingHttpHeaders, limitBytes: number): number | undefined {
  const type = h['content-type'];
  if (type !== 'application/json' && !UTF8_JSON.test(type ?? '')) return undefined;
  if (h['content-encoding'] !== undefined && h['content-encoding'] !== 'identity') return undefined;
  if (h['transfer-encoding'] !== undefined) return undefined;
  const length = Number(h['content-length']);
  return Number.isInteger(length) && length > 0 && length <= limitBytes ? length : undefined;
}

/**
 * Reads a body of `length` bytes (see plainJsonLength) and parses it; calls `done` once, with the
 * parsed value or with a 400 (aborted, short, not JSON). A UTF-8 BOM is skipped, as decoders do.
 */
export function readInferBody(req: IncomingMessage, length: number, done: (err: AppError | null, value?: unknown) => void): void {
  const chunks: Buffer[] = [];
  let got = 0;
  let settled = false;
  req.on('data', (c: Buffer) => {
    chunks.push(c);
    got += c.length;
  });
  req.on('error', () => {
    if (settled) return;
    settled = true;
    done(badRequest('request aborted'));
  });
  req.on('end', () => {
    if (settled) return;
    settled = true;
    if (got !== length) return done(badRequest('request size did not match content length'));
    const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got);
    chunks.length = 0;
    const bom = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0; // JSON.parse would not skip it
    let value: unknown;
    try {
      value = parseInferJson(buf, bom) ?? JSON.parse(buf.toString('utf8', bom));
    } catch (e) {
      return done(badRequest(`body is not valid JSON: ${(e as Error).message}`));
    }
    done(null, value);
  });
}

/** The express route's inference body: the reader above for a plain body, `fallback` (jsonBody) for anything else. */
export function inferBody(limitBytes: number, fallback: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const length = plainJsonLength(req.headers, limitBytes);
    if (length === undefined || req.body !== undefined) return fallback(req, res, next);
    readInferBody(req, length, (err, value) => {
      if (err) return next(err);
      req.body = value;
      next();
    });
  };
}

// The inference fast path: POST /v2/models/{name}[/versions/{v}]/infer answered straight from
// node:http, without express's routing, middleware chain and response helpers, which were about a
// third of the producer's CPU per request. It takes only the plain case (Redis up, no rate limit,
// an allowed key or an open platform, a plain JSON body of known length within the limit) and gives
// it the answers, error bodies and metrics the express route gives; everything else goes to express.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allows, type KeyRing, OPEN_PRINCIPAL, type Principal, presentedKey } from '../core/auth.ts';
import { badRequest } from '../core/errors.ts';
import { retryAfterOf } from './backpressure.ts';
import type { ProducerDeps } from './deps.ts';
import { toAppError } from './http.ts';
import { parseInferJson } from './infer-json.ts';
import type { Metrics } from './metrics.ts';
import type { InferFn } from './routes/v2.ts';

/** The two inference routes, as express names them in metrics; names are never %-encoded here. */
const ROUTE = /^\/v2\/models\/([^/%?#]+)(?:\/versions\/([^/%?#]+))?\/infer$/;
const PLAIN_JSON = /^application\/json\s*;\s*charset="?utf-8"?\s*$/i;

export interface FastInferOptions {
  deps: ProducerDeps;
  keys: KeyRing;
  metrics: Metrics;
  infer: InferFn;
  /** A rate limit is enforced by express's middleware: with one configured, nothing takes this path. */
  rateLimited: boolean;
}

/** Returns a handler that answers the request and returns true, or returns false and leaves it untouched. */
export function fastInfer(o: FastInferOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { deps: d, keys, metrics, infer } = o;
  const limitBytes = d.cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024;
  if (o.rateLimited) return () => false;

  const answer = (res: ServerResponse, status: number, value: unknown, done: (status: number) => void) => {
    if (res.headersSent) return void res.end(() => done(res.statusCode));
    const body = JSON.stringify(value);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body, () => done(status));
  };
  const fail = (req: IncomingMessage, res: ServerResponse, e: unknown, done: (status: number) => void) => {
    const err = toAppError(e, d.logger, (req.url ?? '').slice(0, 200));
    const retryAfter = retryAfterOf(err);
    if (retryAfter !== undefined && !res.headersSent) res.setHeader('Retry-After', String(retryAfter));
    answer(res, err.httpStatus, { error: err.message }, done);
  };

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const m = ROUTE.exec(req.url ?? '');
    if (!m || d.redis.status !== 'ready') return false;
    const h = req.headers;
    let who: Principal = OPEN_PRINCIPAL;
    if (keys.size > 0) {
      const key = presentedKey(h.authorization);
      const p = key ? keys.authenticate(key) : null;
      if (!p || !allows(p, 'infer')) return false; // express answers 401/403
      who = p;
    }
    const type = h['content-type'];
    const length = Number(h['content-length']);
    const plain = (type === 'application/json' || PLAIN_JSON.test(type ?? ''))
      && (h['content-encoding'] === undefined || h['content-encoding'] === 'identity')
      && h['transfer-encoding'] === undefined && Number.isInteger(length) && length > 0 && length <= limitBytes;
    if (!plain) return false;

    const name = m[1]!;
    const version = m[2];
    const done = metrics.startRequest('POST', version === undefined ? '/v2/models/:name/infer' : '/v2/models/:name/versions/:version/infer');
    const chunks: Buffer[] = [];
    let got = 0;
    let settled = false;
    req.on('data', (c: Buffer) => { chunks.push(c); got += c.length; });
    req.on('error', () => {
      if (settled) return;
      settled = true;
      fail(req, res, badRequest('request aborted'), done);
    });
    req.on('end', () => {
      if (settled) return;
      settled = true;
      if (got !== length) return fail(req, res, badRequest('request size did not match content length'), done);
      const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got);
      chunks.length = 0;
      const bom = buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf ? 3 : 0; // decoders drop it; JSON.parse would not
      let json: unknown;
      try {
        json = parseInferJson(buf, bom) ?? JSON.parse(buf.toString('utf8', bom));
      } catch (e) {
        return fail(req, res, badRequest(`body is not valid JSON: ${(e as Error).message}`), done);
      }
      infer(name, version, json, req.socket, who).then(
        (value) => answer(res, 200, value, done),
        (e: unknown) => fail(req, res, e, done),
      );
    });
    return true;
  };
}

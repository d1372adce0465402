// The inference fast path: POST /v2/models/{name}[/versions/{v}]/infer answered straight from
// node:http, without express's routing, middleware chain and response helpers, which were about a
// third of the producer's CPU per request. It takes only the plain case (Redis up, an allowed key or
// an open platform, a plain JSON body of known length within the limit) and gives it the answers,
// error bodies and metrics the express route gives; everything else goes to express. Its limits
// (rate, in flight, Redis memory) are the inference service's, as on every door.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allows, type KeyRing, OPEN_PRINCIPAL, type Principal, presentedKey } from '../../core/auth.ts';
import { clientKey } from '../auth.ts';
import { retryAfterOf } from './backpressure.ts';
import type { ProducerDeps } from '../deps.ts';
import { toAppError } from '../http.ts';
import { plainJsonLength, readInferBody } from '../body.ts';
import type { Metrics } from '../metrics.ts';
import { MAX_ROUTE_KEY, ROUTE_KEY_HEADER, VERSION_HEADER } from '../../core/routing.ts';
import { jsonAnswerText, type Caller, type InferenceService } from './service.ts';

/** The two inference routes, as express names them in metrics; names are never %-encoded here. */
const ROUTE = /^\/v2\/models\/([^/%?#]+)(?:\/versions\/([^/%?#]+))?\/infer$/;

export interface FastInferOptions {
  deps: ProducerDeps;
  keys: KeyRing;
  metrics: Metrics;
  service: InferenceService;
}

/** Returns a handler that answers the request and returns true, or returns false and leaves it untouched. */
export function fastInfer(o: FastInferOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { deps: d, keys, metrics, service } = o;
  const limitBytes = d.cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024;

  // Headers as one flat array to writeHead: no header object per answer for node:http to walk.
  const answer = (res: ServerResponse, status: number, body: string, done: (status: number) => void, version?: number) => {
    if (res.headersSent) return void res.end(() => done(res.statusCode));
    const headers = ['Content-Type', 'application/json; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body))];
    if (version !== undefined) headers.push(VERSION_HEADER, String(version));
    res.writeHead(status, headers);
    res.end(body, () => done(status));
  };
  const fail = (req: IncomingMessage, res: ServerResponse, e: unknown, done: (status: number) => void) => {
    const err = toAppError(e, d.logger, (req.url ?? '').slice(0, 200));
    const retryAfter = retryAfterOf(err);
    if (retryAfter !== undefined && !res.headersSent) res.setHeader('Retry-After', String(retryAfter));
    answer(res, err.httpStatus, JSON.stringify({ error: err.message }), done);
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
    const length = plainJsonLength(h, limitBytes);
    if (length === undefined) return false;

    const name = m[1]!;
    const version = m[2];
    const done = metrics.startRequest('POST', version === undefined ? '/v2/models/:name/infer' : '/v2/models/:name/versions/:version/infer');
    readInferBody(req, length, (err, json) => {
      if (err) return fail(req, res, err, done);
      const socket = req.socket;
      const caller: Caller = { who, client: clientKey(who, socket.remoteAddress ?? ''), gone: () => socket.destroyed };
      const key = h[ROUTE_KEY_HEADER];
      if (typeof key === 'string' && key) caller.routeKey = key.slice(0, MAX_ROUTE_KEY);
      service.infer(name, version, json, caller).then(
        (value) => answer(res, 200, jsonAnswerText(value), done, value.model.version),
        (e: unknown) => fail(req, res, e, done),
      );
    });
    return true;
  };
}

// Authentication, scopes, rate limits and the audit log for the producer's routes. Which scope a
// route needs is decided here, in one table, so a new route cannot be left open by accident.
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, MemoryStore, rateLimit, type Store } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import { allows, type KeyRing, OPEN_PRINCIPAL, presentedKey, type Principal, type Scope } from '../core/auth.ts';
import type { Config } from '../core/config.ts';
import { AppError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import { Overloaded } from './inference/backpressure.ts';
import { sendError } from './http.ts';

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/**
 * The path as express matches it: routes are case-insensitive and take an optional trailing slash,
 * so `/METRICS` and `/metrics/` reach the `/metrics` handler and must need the scope `/metrics` does.
 */
export function routedPath(path: string): string {
  const lower = path.toLowerCase();
  return lower.length > 1 ? lower.replace(/\/+$/, '') || '/' : lower;
}

/** null: no key needed. The main scope of a route; requiredScopes lists every scope it needs. */
export function requiredScope(method: string, rawPath: string): Scope | null {
  const path = routedPath(rawPath);
  if (path.startsWith('/v2/health/')) return null;
  // Platform-wide figures, per model of every tenant: for the platform's operators (and their Prometheus).
  if (path === '/metrics') return 'platform';
  // Retention rules are the platform's, for every tenant (PUT, GET and DELETE alike).
  if (/^\/v1\/tenants(\/|$)/.test(path)) return 'platform';
  if (method === 'GET' || method === 'HEAD') return 'read';
  if (method === 'POST' && /^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/infer$/.test(path)) return 'infer';
  if (method === 'POST' && /^\/v1\/models\/[^/]+(\/versions\/[^/]+)?:(predict|explain)$/.test(path)) return 'infer';
  if (method === 'POST' && /^\/v1\/(batches|datasets|jobs)(\/|$)/.test(path)) return 'submit';
  if (method === 'POST' && /^\/v1\/models\/[^/]+\/versions\/?$/.test(path)) return 'publish';
  // Steering a rollout under way (the dashboard's buttons); starting one moves an alias: admin.
  if (method === 'POST' && /^\/v1\/models\/[^/]+\/rollouts\/[^/]+\/(pause|resume|abort)$/.test(path)) return 'publish';
  // The OpenAI-compatible Files and Batches: a key that may submit batches may upload and delete their files.
  if ((method === 'POST' || method === 'DELETE') && /^\/openai\/v1\/(files|batches)(\/|$)/.test(path)) return 'submit';
  return 'admin';
}

/** Training and compression always register a version: they need `publish` as well as `submit`. */
export function requiredScopes(method: string, rawPath: string): Scope[] {
  const main = requiredScope(method, rawPath);
  const path = routedPath(rawPath);
  if (main === null) return [];
  if (method === 'POST' && /^\/v1\/jobs\/(train|compress)\/?$/.test(path)) return [main, 'publish'];
  return [main];
}

export function principalOf(req: Request): Principal {
  return req.principal ?? OPEN_PRINCIPAL;
}

export function authMiddleware(keys: KeyRing): RequestHandler {
  return (req, res, next) => {
    const scopes = requiredScopes(req.method, req.path);
    if (keys.size === 0) {
      req.principal = OPEN_PRINCIPAL;
      return next();
    }
    if (!scopes.length) return next();
    const key = presentedKey(req.headers.authorization);
    if (!key) return sendError(req, res, new AppError('unauthorized', 'an API key is required: Authorization: Bearer <key>'));
    const p = keys.authenticate(key);
    if (!p) return sendError(req, res, new AppError('unauthorized', 'unknown API key'));
    const lacking = scopes.find((s) => !allows(p, s));
    if (lacking) {
      req.principal = p; // only for the audit line: the refusal names who was refused
      return sendError(req, res, new AppError('forbidden', `this key lacks the "${lacking}" scope`));
    }
    req.principal = p;
    next();
  };
}

/** The client a rate limit counts: its key, or its address when the platform runs open. */
export function clientKey(p: Principal | undefined, ip: string): string {
  return p && p.keyId !== 'open' ? `key:${p.keyId}` : `ip:${ipKeyGenerator(ip)}`;
}

export interface RateLimit {
  /** For the HTTP routes (all but /v2/health/*), after authentication. */
  middleware: RequestHandler;
  /** Counts one call of `client` (clientKey) outside the middleware (inference, gRPC); throws rate_limited past the limit. */
  check(client: string): Promise<void>;
}

/**
 * MODELQ_RATE_LIMIT "N/s|m|h": per key, or per client address when the platform runs open. Counted
 * in Redis (under the platform's prefix), so N producers together allow N requests, not N times N,
 * and a client's REST and gRPC calls draw on one allowance. Inference requests are counted by the
 * inference service (producer/inference/service.ts), the rest here. Without `shared` (unit tests) it counts
 * in this process.
 */
export function createRateLimit(spec: string | undefined, shared?: { redis: Redis; prefix: string }): RateLimit | null {
  if (!spec) return null;
  const [n, unit] = spec.split('/') as [string, 's' | 'm' | 'h'];
  const windowMs = { s: 1000, m: 60_000, h: 3_600_000 }[unit];
  const limit = Number(n);
  const store: Store = shared
    ? new RedisStore({
        prefix: `${shared.prefix}:ratelimit:`,
        sendCommand: (command: string, ...args: string[]) => shared.redis.call(command, ...args) as Promise<RedisReply>,
      })
    : new MemoryStore();
  const refusal = () => new Overloaded('rate_limited', `rate limit of ${spec} exceeded; retry later`, Math.max(1, Math.ceil(windowMs / 1000)));
  // rateLimit() initialises the store with the window; check() below then counts in the same one.
  const middleware = rateLimit({
    windowMs,
    store,
    limit,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    // Inference is counted by the inference service, on every door (the fast path and gRPC too).
    skip: (req) => req.path.startsWith('/v2/health/') || requiredScope(req.method, req.path) === 'infer',
    keyGenerator: (req) => clientKey(req.principal, req.ip ?? ''),
    // clientKey passes addresses through ipKeyGenerator; the library cannot see that through the call.
    validate: { keyGeneratorIpFallback: false },
    handler: (req, res) => sendError(req, res, refusal()),
  });
  return {
    middleware,
    async check(client) {
      const { totalHits } = await store.increment(client);
      if (totalHits > limit) throw refusal();
    },
  };
}

const perDeps = new WeakMap<object, RateLimit | null>();

/** One per producer (per deps): the HTTP middleware and the gRPC server share its counts. */
export function rateLimitFor(d: { cfg: Pick<Config, 'MODELQ_RATE_LIMIT'>; redis: Redis; prefix: string }): RateLimit | null {
  if (!perDeps.has(d)) perDeps.set(d, createRateLimit(d.cfg.MODELQ_RATE_LIMIT, { redis: d.redis, prefix: d.prefix }));
  return perDeps.get(d)!;
}

/** One audit line: tenant, key id (never the key), route and result; the same fields on every door. */
export interface AuditFields {
  tenant: string | null;
  keyId: string | null;
  method: string;
  route: string;
  /** An HTTP status, or a gRPC status code's name. */
  status: number | string;
}
export const auditLine = (logger: Logger, f: AuditFields) => logger.info({ audit: true, ...f }, 'audit');

/**
 * Every state-changing call (refused ones too): tenant, key id (never the key), route and result.
 * Reads and online inference change no state, and a line per inference request would cost the hot
 * path several percent of its throughput: of those, only refusals for the key (401, 403) are written.
 */
export function auditMiddleware(logger: Logger, sink?: (f: AuditFields & { target: string }) => void): RequestHandler {
  return (req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
    const inference = requiredScope(req.method, req.path) === 'infer';
    res.on('finish', () => {
      if (inference && res.statusCode !== 401 && res.statusCode !== 403) return;
      const p = req.principal;
      const f: AuditFields = {
        tenant: p?.tenant ?? null,
        keyId: p?.keyId ?? null,
        method: req.method,
        route: req.route ? `${req.baseUrl}${String(req.route.path)}` : req.path.slice(0, 200),
        status: res.statusCode,
      };
      auditLine(logger, f);
      sink?.({ ...f, target: req.path.slice(0, 200) });
    });
    next();
  };
}

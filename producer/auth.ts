// Authentication, scopes, rate limits and the audit log for the producer's routes. Which scope a
// route needs is decided here, in one table, so a new route cannot be left open by accident.
import type { Request, RequestHandler } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import type { Redis } from 'ioredis';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import { allows, type KeyRing, OPEN_PRINCIPAL, presentedKey, type Principal, type Scope } from '../core/auth.ts';
import { AppError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
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
  if (method === 'GET' || method === 'HEAD') return 'read';
  if (method === 'POST' && /^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/infer$/.test(path)) return 'infer';
  if (method === 'POST' && /^\/v1\/(batches|datasets|jobs)(\/|$)/.test(path)) return 'submit';
  if (method === 'POST' && /^\/v1\/models\/[^/]+\/versions\/?$/.test(path)) return 'publish';
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
    if (lacking) return sendError(req, res, new AppError('forbidden', `this key lacks the "${lacking}" scope`));
    req.principal = p;
    next();
  };
}

/**
 * MODELQ_RATE_LIMIT "N/s|m|h": per key, or per client address when the platform runs open. Counted
 * in Redis (under the platform's prefix), so N producers together allow N requests, not N times N.
 * Without `shared` (unit tests) it counts in this process.
 */
export function rateLimitMiddleware(spec: string | undefined, shared?: { redis: Redis; prefix: string }): RequestHandler | null {
  if (!spec) return null;
  const [n, unit] = spec.split('/') as [string, 's' | 'm' | 'h'];
  const windowMs = { s: 1000, m: 60_000, h: 3_600_000 }[unit];
  const store =
    shared &&
    new RedisStore({
      prefix: `${shared.prefix}:ratelimit:`,
      sendCommand: (command: string, ...args: string[]) => shared.redis.call(command, ...args) as Promise<RedisReply>,
    });
  return rateLimit({
    windowMs,
    ...(store ? { store } : {}),
    limit: Number(n),
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skip: (req) => req.path.startsWith('/v2/health/'),
    keyGenerator: (req) => (req.principal && req.principal.keyId !== 'open' ? `key:${req.principal.keyId}` : `ip:${ipKeyGenerator(req.ip ?? '')}`),
    handler: (req, res) => {
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(windowMs / 1000))));
      sendError(req, res, new AppError('rate_limited', `rate limit of ${spec} exceeded; retry later`));
    },
  });
}

/** Every state-changing call (refused ones too): tenant, key id (never the key), route and result. */
export function auditMiddleware(logger: Logger): RequestHandler {
  return (req, res, next) => {
    // Reads and online inference change no state; a line per inference request would also cost
    // the hot path several percent of its throughput.
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS' || requiredScope(req.method, req.path) === 'infer') return next();
    res.on('finish', () => {
      const p = req.principal;
      logger.info(
        {
          audit: true,
          tenant: p?.tenant ?? null,
          keyId: p?.keyId ?? null,
          method: req.method,
          route: req.route ? `${req.baseUrl}${String(req.route.path)}` : req.path.slice(0, 200),
          status: res.statusCode,
        },
        'audit',
      );
    });
    next();
  };
}

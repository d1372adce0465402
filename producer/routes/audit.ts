// GET /v1/audit: the audit stream (core/audit-stream.ts) filtered by time, actor and action. A
// platform key sees every tenant's entries; any other key only its own tenant's.
import { Router } from 'express';
import { z } from 'zod';
import { AuditStream } from '../../core/audit-stream.ts';
import { isPlatform } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { principalOf } from '../auth.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';

const perDeps = new WeakMap<object, AuditStream>();
/** One per producer (per deps). */
export function auditStreamFor(d: Pick<ProducerDeps, 'redis' | 'prefix' | 'cfg'>): AuditStream {
  let s = perDeps.get(d);
  if (!s) perDeps.set(d, (s = new AuditStream(d.redis, d.prefix, d.cfg.MODELQ_AUDIT_STREAM_MAX)));
  return s;
}

/** An ISO time or epoch milliseconds (query parameters `from`, `to`). */
export const timeQuery = z
  .string()
  .max(40)
  .transform((s, ctx) => {
    const ms = /^\d{1,15}$/.test(s) ? Number(s) : Date.parse(s);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'must be an ISO time or epoch milliseconds' });
      return z.NEVER;
    }
    return ms;
  });

export const auditQuerySchema = z
  .object({
    from: timeQuery.optional(),
    to: timeQuery.optional(),
    actor: z.string().min(1).max(64).optional(),
    action: z.string().min(1).max(200).optional(),
    after: z
      .string()
      .regex(/^\d{1,15}-\d{1,15}$/, 'must be an entry id from a previous page')
      .optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export function auditRouter(d: ProducerDeps): Router {
  const r = Router();
  r.get('/v1/audit', async (req, res) => {
    const q = parseBody(auditQuerySchema, req.query);
    const p = principalOf(req);
    if (!isPlatform(p) && q.actor !== undefined && q.actor !== p.tenant)
      throw new AppError('forbidden', `actor: this key sees only the entries of tenant "${p.tenant}"`);
    const stream = auditStreamFor(d);
    const { entries, next } = await stream.query({ ...q, ...(isPlatform(p) ? {} : { actor: p.tenant }) });
    res.json({ entries, next });
  });
  return r;
}

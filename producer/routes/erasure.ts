// Erasure and retention (core/erasure.ts, core/retention.ts): DELETE of a dataset (with ?cascade=true
// its dependent model versions too), a model version, a batch or a range of payload logs, each
// answering with its erasure report; GET /v1/datasets/{id}/dependents; per-tenant retention rules
// (platform scope).
import { Router } from 'express';
import { z } from 'zod';
import { isPlatform, type Principal } from '../../core/auth.ts';
import { BatchStore } from '../../core/batches.ts';
import { DatasetStore, DATASET_ID_RE } from '../../core/datasets.ts';
import { Eraser } from '../../core/erasure.ts';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { checkName } from '../../core/registry.ts';
import { isFinal, RolloutStore } from '../../core/rollouts.ts';
import { RetentionRules, retentionRuleSchema, TENANT_RE } from '../../core/retention.ts';
import { principalOf } from '../auth.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { assertWritable } from '../model-access.ts';
import { auditStreamFor } from './audit.ts';

/** An ISO time or epoch milliseconds. */
const time = z
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

export const logEraseQuerySchema = z.object({ from: time, to: time }).strict();
export const datasetEraseQuerySchema = z.object({ cascade: z.enum(['true', 'false']).optional() }).strict();

const actorOf = (p: Principal) => ({ tenant: p.tenant, keyId: p.keyId });

export function erasureRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  const eraser = new Eraser({
    redis: d.redis,
    prefix: d.prefix,
    store: d.store,
    registry: d.registry,
    queue: (q) => d.queues.queue(q),
    audit: auditStreamFor(d),
  });
  const datasets = new DatasetStore(d.redis, d.prefix);
  const batches = new BatchStore(d.redis, d.prefix);
  const rules = new RetentionRules(d.redis, d.prefix);

  /** The tenant's own dataset (any tenant's for a platform key); others are not found. */
  const dataset = async (id: string, p: Principal) => {
    const rec = DATASET_ID_RE.test(id) ? await datasets.get(id) : null;
    if (!rec || ((rec.tenant ?? 'default') !== p.tenant && !isPlatform(p))) throw notFound(`dataset "${id.slice(0, 60)}" not found`);
    return rec;
  };

  r.get('/v1/datasets/:id/dependents', async (req, res) => {
    const rec = await dataset(req.params.id, principalOf(req));
    res.json({ dataset: rec.id, dependents: await eraser.dependents(rec.id) });
  });

  r.delete('/v1/datasets/:id', async (req, res) => {
    const q = parseBody(datasetEraseQuerySchema, req.query, 'query');
    const p = principalOf(req);
    const rec = await dataset(req.params.id, p);
    const cascade = q.cascade === 'true';
    if (cascade) for (const dep of await eraser.dependents(rec.id)) await assertWritable(d.registry, dep.name, p, 'admin');
    res.json(await eraser.eraseDataset(rec.id, { cascade, actor: actorOf(p) }));
  });

  r.delete('/v1/models/:name/versions/:version', async (req, res) => {
    const name = checkName(req.params.name);
    const p = principalOf(req);
    const a = await assertWritable(d.registry, name, p, 'admin');
    if (!a) throw notFound(`model "${name}" not found`);
    if (!/^[1-9][0-9]{0,8}$/.test(req.params.version)) throw badRequest(`version "${req.params.version.slice(0, 40)}" must be a positive integer`);
    const version = Number(req.params.version);
    await d.registry.getVersion(name, version);
    const rollout = (await new RolloutStore(d.redis, d.prefix).list(name, 1000)).find(
      (x) => !isFinal(x.status) && (x.candidate === version || x.baseline === version),
    );
    if (rollout) throw new AppError('conflict', `rollout ${rollout.id} of alias "${rollout.alias}" is running on version ${version}; abort it first`);
    res.json(await eraser.eraseVersion(name, version, actorOf(p)));
  });

  r.delete('/v1/batches/:id', async (req, res) => {
    const id = String(req.params.id);
    const p = principalOf(req);
    const spec = /^batch_[0-9a-f]{20}$/.test(id) ? await batches.spec(id) : null;
    if (!spec || ((spec.tenant ?? 'default') !== p.tenant && !isPlatform(p))) throw notFound(`batch "${id.slice(0, 60)}" not found`);
    const status = await batches.status(id);
    if (status && !BatchStore.isFinal(status))
      throw new AppError('conflict', `batch ${id} is ${status}; cancel it (POST .../cancel) and erase it once it has ended`);
    res.json(await eraser.eraseBatch(id, actorOf(p)));
  });

  r.delete('/v1/models/:name/logs', async (req, res) => {
    const name = checkName(req.params.name);
    const p = principalOf(req);
    const q = parseBody(logEraseQuerySchema, req.query, 'query');
    if (q.from > q.to) throw badRequest('from must not be after to');
    if (!(await assertWritable(d.registry, name, p, 'admin'))) throw notFound(`model "${name}" not found`);
    // A platform key erases every tenant's logs of the model; a tenant's key its own.
    res.json(await eraser.eraseLogs(isPlatform(p) ? null : p.tenant, name, q.from, q.to, actorOf(p)));
  });

  const tenantOf = (raw: unknown) => {
    const id = String(raw);
    if (!TENANT_RE.test(id)) throw badRequest('tenant must be 1-64 letters, digits, _ . -');
    return id;
  };

  r.put('/v1/tenants/:id/retention', json, async (req, res) => {
    const tenant = tenantOf(req.params.id);
    const rule = parseBody(retentionRuleSchema, req.body, 'body');
    await rules.set(tenant, rule);
    res.json({ tenant, ...rule });
  });

  r.get('/v1/tenants/:id/retention', async (req, res) => {
    const tenant = tenantOf(req.params.id);
    const rule = await rules.get(tenant);
    if (!rule) throw notFound(`tenant "${tenant}" has no retention rule`);
    res.json({ tenant, ...rule });
  });

  r.delete('/v1/tenants/:id/retention', async (req, res) => {
    const tenant = tenantOf(req.params.id);
    if (!(await rules.remove(tenant))) throw notFound(`tenant "${tenant}" has no retention rule`);
    res.status(204).end();
  });

  return r;
}

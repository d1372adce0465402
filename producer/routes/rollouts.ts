// /v1/models/{name}/rollouts: start a rollout of a candidate version on an alias, read its state and
// audit history, pause, resume or abort it. The rollout itself is evaluated by workers
// (workers/rollout/tick.ts) through a job scheduler on the `model` queue.
import { randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { checkName } from '../../core/registry.ts';
import {
  applyAlias,
  currentFigures,
  isFinal,
  ROLLOUT_JOB,
  rolloutBodySchema,
  rolloutSchedulerId,
  RolloutStore,
  type AuditRecord,
  type Rollout,
} from '../../core/rollouts.ts';
import { outputDrift, readComparison } from '../../core/shadow-compare.ts';
import { percentileMs, readFigures } from '../../core/version-figures.ts';
import { primaryOf } from '../../core/routing.ts';
import { levelOf } from '../../core/drift/stats.ts';
import { principalOf } from '../auth.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { assertReadable, assertWritable } from '../model-access.ts';

const ID_RE = /^ro_[0-9a-f]{16}$/;
export const rolloutActionSchema = z.enum(['pause', 'resume', 'abort']);

export function rolloutsRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  const store = new RolloutStore(d.redis, d.prefix);
  const schedule = (ro: Rollout) =>
    d.queues
      .queue('model')
      .upsertJobScheduler(
        rolloutSchedulerId(ro.name, ro.id),
        { every: d.cfg.MODELQ_ROLLOUT_INTERVAL_MS },
        { name: ROLLOUT_JOB, data: { name: ro.name, id: ro.id }, opts: { removeOnComplete: 100, removeOnFail: 100 } },
      );
  const byOf = (req: Request) => {
    const p = principalOf(req);
    return `${p.tenant}/${p.keyId}`;
  };
  const find = async (req: Request): Promise<Rollout> => {
    const { name, id } = req.params as Record<string, string>;
    await assertReadable(d.registry, checkName(name!), principalOf(req));
    const ro = ID_RE.test(id!) ? await store.get(name!, id!) : null;
    if (!ro) throw notFound(`model "${name}" has no rollout "${id!.slice(0, 40)}"`);
    return ro;
  };

  r.post('/v1/models/:name/rollouts', json, async (req, res) => {
    const name = checkName((req.params as Record<string, string>).name!);
    const body = parseBody(rolloutBodySchema, req.body);
    const p = principalOf(req);
    await assertWritable(d.registry, name, p, 'admin');
    const { version: baseline, route } = await d.registry.aliasOf(name, body.alias);
    if (route) throw new AppError('conflict', `alias "${body.alias}" is split or shadowed; point it at one version before a rollout`);
    if (body.candidate === baseline) throw badRequest(`candidate: alias "${body.alias}" already names version ${baseline}`);
    await d.registry.getVersion(name, body.candidate);
    const now = Date.now();
    const ro: Rollout = {
      ...body,
      id: `ro_${randomBytes(8).toString('hex')}`,
      name,
      baseline,
      status: 'running',
      step: 0,
      stepStartedAt: now,
      since: await currentFigures(d.redis, d.prefix, { name, baseline, candidate: body.candidate }),
      evaluations: 0,
      evaluationsSeeingErrors: 0,
      createdAt: now,
      updatedAt: now,
      by: { tenant: p.tenant, keyId: p.keyId },
      rev: 1,
    };
    if (body.steps[0] === 100) Object.assign(ro, { status: 'completed', reason: 'the first step is 100%' });
    if (!(await store.create(ro)))
      throw new AppError('conflict', `alias "${body.alias}" already has a rollout under way (${await store.activeId(name, body.alias)})`);
    try {
      await applyAlias(d.registry, ro); // checks the candidate takes the baseline's inputs
    } catch (e) {
      await store.save({ ...ro, status: 'aborted', reason: `not started: ${(e as Error).message}`, rev: ro.rev + 1 });
      throw e;
    }
    const started: Rollout = { ...ro, rev: ro.rev + 1 };
    await store.save(started, { at: now, action: 'start', step: 0, weight: body.steps[0]!, reason: `started by ${byOf(req)}`, by: byOf(req) });
    if (!isFinal(ro.status)) await schedule(ro);
    res.status(201).json(started);
  });

  r.get('/v1/models/:name/rollouts', async (req, res) => {
    const name = checkName((req.params as Record<string, string>).name!);
    await assertReadable(d.registry, name, principalOf(req));
    res.json({ rollouts: await store.list(name) });
  });

  // Shadow comparisons of one pair: requests the `shadow` version ran after `primary` answered.
  r.get('/v1/models/:name/comparisons/:primary/:shadow', async (req, res) => {
    const { name, primary, shadow } = req.params as Record<string, string>;
    await assertReadable(d.registry, checkName(name!), principalOf(req));
    const [a, b] = [primary!, shadow!].map((v) => {
      if (!/^[1-9][0-9]{0,8}$/.test(v)) throw badRequest(`version "${v.slice(0, 40)}" must be a positive integer`);
      return Number(v);
    });
    const c = await readComparison(d.redis, d.prefix, name!, a!, b!);
    const p50 = (h: Record<number, number>) => percentileMs({ requests: 0, errors: 0, latency: h }, 0.5);
    res.json({
      name,
      primary: a,
      shadow: b,
      ...c,
      agreement: c.compared ? c.agreed / c.compared : null,
      withinToleranceShare: c.compared ? c.withinTolerance / c.compared : null,
      primaryP50Ms: p50(c.primaryLatency),
      shadowP50Ms: p50(c.shadowLatency),
    });
  });

  // An alias's versions side by side: split, requests, errors, latency, agreement and output drift
  // (each version's top-1 class shares against the primary's) of the live traffic so far.
  r.get('/v1/models/:name/aliases/:alias/live', async (req, res) => {
    const { name, alias } = req.params as Record<string, string>;
    await assertReadable(d.registry, checkName(name!), principalOf(req));
    const { version, route } = await d.registry.aliasOf(name!, alias!);
    const split = route?.versions ?? [{ version, weight: 100 }];
    const primary = route ? primaryOf(route) : version;
    const thresholds = { warn: d.cfg.MODELQ_DRIFT_WARN, alert: d.cfg.MODELQ_DRIFT_ALERT };
    const drift = (score: number | null) => ({ outputDrift: score, outputDriftLevel: score === null ? 'no_data' : levelOf(score, thresholds) });
    const figures = new Map(await Promise.all(split.map(async (v) => [v.version, await readFigures(d.redis, d.prefix, name!, v.version)] as const)));
    const base = figures.get(primary)?.classes ?? {};
    // Agreement of a split version with the primary: from shadow comparisons either way (a rollout mirrors the candidate to the baseline).
    const agreementWith = async (v: number) => {
      for (const [a, b] of [
        [primary, v],
        [v, primary],
      ] as const) {
        const c = await readComparison(d.redis, d.prefix, name!, a, b);
        if (c.compared) return { compared: c.compared, agreement: c.agreed / c.compared };
      }
      return { compared: 0, agreement: null };
    };
    const versions: Record<string, unknown>[] = [];
    for (const v of split) {
      const f = figures.get(v.version)!;
      const answered = f.requests - f.errors;
      versions.push({
        version: v.version,
        weight: v.weight,
        role: v.version === primary ? 'primary' : 'canary',
        requests: f.requests,
        errors: f.errors,
        errorRate: f.requests ? f.errors / f.requests : null,
        p50Ms: answered ? percentileMs(f, 0.5) : null,
        p99Ms: answered ? percentileMs(f, 0.99) : null,
        classes: f.classes ?? {},
        ...(v.version === primary
          ? { agreement: null, compared: 0, ...drift(null) }
          : { ...(await agreementWith(v.version)), ...drift(outputDrift(base, f.classes ?? {})) }),
      });
    }
    let shadow: Record<string, unknown> | null = null;
    if (route?.shadow) {
      const c = await readComparison(d.redis, d.prefix, name!, primary, route.shadow.version);
      const score = outputDrift(c.primaryClasses, c.shadowClasses);
      const p = (h: Record<number, number>, q: number) => percentileMs({ requests: 0, errors: 0, latency: h }, q);
      shadow = {
        version: route.shadow.version,
        fraction: route.shadow.fraction,
        compared: c.compared,
        errors: c.errors,
        dropped: c.dropped,
        agreement: c.compared ? c.agreed / c.compared : null,
        withinToleranceShare: c.compared ? c.withinTolerance / c.compared : null,
        primaryP50Ms: p(c.primaryLatency, 0.5),
        shadowP50Ms: p(c.shadowLatency, 0.5),
        shadowP99Ms: p(c.shadowLatency, 0.99),
        classes: c.shadowClasses,
        ...drift(score),
      };
      // The shadow beside the split's versions, from its comparison with the primary.
      versions.push({
        version: route.shadow.version,
        weight: 0,
        role: 'shadow',
        requests: c.compared + c.errors,
        errors: c.errors,
        errorRate: c.compared + c.errors ? c.errors / (c.compared + c.errors) : null,
        p50Ms: shadow.shadowP50Ms,
        p99Ms: shadow.shadowP99Ms,
        classes: c.shadowClasses,
        agreement: shadow.agreement,
        compared: c.compared,
        ...drift(score),
      });
    }
    res.json({ name, alias, primary, versions, shadow });
  });

  r.get('/v1/models/:name/rollouts/:id', async (req, res) => {
    const ro = await find(req);
    res.json({ ...ro, history: await store.history(ro.name, ro.id) });
  });

  r.post('/v1/models/:name/rollouts/:id/:action', async (req, res) => {
    const action = rolloutActionSchema.safeParse((req.params as Record<string, string>).action);
    if (!action.success) throw notFound(`no route POST ${req.path.slice(0, 200)}`);
    const ro = await find(req);
    await assertWritable(d.registry, ro.name, principalOf(req), 'publish');
    const want = { pause: 'paused', resume: 'running', abort: 'aborted' } as const;
    const by = byOf(req);
    const next = await store.update(ro.name, ro.id, async (cur) => {
      if (isFinal(cur.status)) throw new AppError('conflict', `rollout ${cur.id} has ended (${cur.status})`);
      if (cur.status === want[action.data]) return null;
      const now = Date.now();
      const n: Rollout = { ...cur, status: want[action.data], updatedAt: now };
      if (action.data === 'abort') n.reason = `aborted by ${by}`;
      // A resumed step starts over: figures from before the pause do not count for it.
      if (action.data === 'resume')
        Object.assign(n, { stepStartedAt: now, since: await currentFigures(d.redis, d.prefix, cur), evaluations: 0, evaluationsSeeingErrors: 0 });
      const audit: AuditRecord = {
        at: now,
        action: action.data,
        step: n.step,
        weight: action.data === 'abort' ? 0 : n.steps[n.step]!,
        reason: `${action.data} by ${by}`,
        by,
      };
      if (cur.last) audit.figures = cur.last.figures;
      return { next: n, audit };
    });
    if (!next) throw notFound(`model "${ro.name}" has no rollout "${ro.id}"`);
    // The next evaluation does it too (and then removes the scheduler): this answers at once.
    if (next.status === 'aborted') await applyAlias(d.registry, next);
    res.json(next);
  });

  return r;
}

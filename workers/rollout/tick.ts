// Processor for `rollout` jobs (a job scheduler per rollout on the `model` queue, every
// MODELQ_ROLLOUT_INTERVAL_MS): one evaluation of a rollout. It reads the step's live figures, decides
// (core/rollouts.ts decide), saves the new state compare-and-set, moves the alias, and audits every
// move with the figures behind it. A finished rollout removes its scheduler.
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../core/config.ts';
import { DriftWindows, versionDrift, type DriftLevel } from '../../core/drift/index.ts';
import type { Logger } from '../../core/logger.ts';
import type { Registry } from '../../core/registry.ts';
import {
  applyAlias,
  currentFigures,
  decide,
  isFinal,
  rolloutJobSchema,
  rolloutSchedulerId,
  RolloutStore,
  stepFigures,
  type AuditRecord,
  type Rollout,
} from '../../core/rollouts.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { parseJobData } from '../processor.ts';

export interface RolloutTickDeps {
  redis: Redis;
  prefix: string;
  registry: Registry;
  store: ArtifactStore;
  cfg: Config;
  logger: Logger;
  /** The `model` queue, whose schedulers drive rollouts. */
  queue: Queue;
}

export async function rolloutTick(job: Pick<Job, 'data'>, d: RolloutTickDeps): Promise<{ status: string; decision?: string }> {
  const { name, id } = parseJobData(rolloutJobSchema, job.data, 'rollout');
  const store = new RolloutStore(d.redis, d.prefix);
  const r = await store.get(name, id);
  if (!r || isFinal(r.status)) {
    if (r) await applyAlias(d.registry, r);
    await d.queue.removeJobScheduler(rolloutSchedulerId(name, id));
    return { status: r?.status ?? 'gone' };
  }
  await applyAlias(d.registry, r);
  if (r.status === 'paused') return { status: r.status };
  const [figures, drift] = await Promise.all([currentFigures(d.redis, d.prefix, r), r.gates.maxDriftLevel ? driftOf(d, r) : null]);
  const at = Date.now();
  const f = stepFigures(r, { ...figures, drift }, at);
  const dec = decide(r, f);
  const next: Rollout = {
    ...r,
    rev: r.rev + 1,
    updatedAt: at,
    evaluations: r.evaluations + 1,
    evaluationsSeeingErrors: r.evaluationsSeeingErrors + (f.candidate.errors > 0 ? 1 : 0),
    last: { at, decision: dec.action, reason: dec.reason, figures: f },
  };
  if (dec.action === 'rollback') Object.assign(next, { status: 'rolled_back', reason: dec.reason });
  if (dec.action === 'advance') {
    const step = r.step + 1;
    Object.assign(next, { step, stepStartedAt: at, since: figures, evaluations: 0, evaluationsSeeingErrors: 0 });
    if (r.steps[step] === 100) Object.assign(next, { status: 'completed', reason: dec.reason });
  }
  const weight = next.status === 'rolled_back' ? 0 : next.steps[next.step]!;
  const audit: AuditRecord | undefined =
    dec.action === 'wait'
      ? undefined
      : {
          at,
          action: dec.action === 'rollback' ? 'rollback' : next.status === 'completed' ? 'complete' : 'advance',
          step: next.step,
          weight,
          reason: dec.reason,
          ...(dec.gate ? { gate: dec.gate } : {}),
          figures: f,
          ...(dec.action === 'rollback' ? { evaluationsSeeingErrors: next.evaluationsSeeingErrors } : {}),
        };
  // The alias moves first, so whoever reads the saved state finds the alias there; a state that
  // cannot be saved (paused or aborted meanwhile) has its alias put back by the next evaluation.
  if (audit) await applyAlias(d.registry, next);
  if (!(await store.save(next, audit))) return { status: 'conflict' };
  if (!audit) return { status: next.status, decision: dec.action };
  d.logger.info({ model: name, alias: r.alias, rollout: id, action: dec.action, gate: dec.gate, weight, reason: dec.reason }, 'rollout moved');
  if (isFinal(next.status)) await d.queue.removeJobScheduler(rolloutSchedulerId(name, id));
  return { status: next.status, decision: dec.action };
}

async function driftOf(d: RolloutTickDeps, r: Rollout): Promise<DriftLevel | null> {
  const v = await d.registry.getVersion(r.name, r.candidate);
  const report = await versionDrift(d.store, new DriftWindows(d.redis, d.prefix, d.cfg.MODELQ_DRIFT_WINDOW), v, {
    warn: d.cfg.MODELQ_DRIFT_WARN,
    alert: d.cfg.MODELQ_DRIFT_ALERT,
  });
  return report ? report.level : null;
}

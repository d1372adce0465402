// Rollouts: an alias moved from a baseline version to a candidate in steps of weight, each step held
// until the candidate has answered enough requests for long enough with every gate holding, and
// undone by itself when a gate fails. The state lives in Redis (one JSON record per rollout, written
// compare-and-set on its revision) with an audit list of every move and the figures behind it; a job
// scheduler on the `model` queue evaluates it (workers/rollout.ts), so it outlives any process.
import type { Redis } from 'ioredis';
import { LUA, runLua } from './lua/scripts.ts';
import { z } from 'zod';
import type { DriftLevel } from './drift/index.ts';
import type { Registry } from './registry.ts';
import { readComparison } from './shadow-compare.ts';
import { diffFigures, EMPTY_FIGURES, percentileMs, readFigures, type Figures } from './version-figures.ts';

export const DRIFT_LEVELS = ['warn', 'alert'] as const;

export const rolloutBodySchema = z
  .object({
    alias: z.string().min(1).max(64).meta({ description: 'The alias to move; it names the baseline version now' }),
    candidate: z.number().int().min(1).meta({ description: 'The version the alias moves to' }),
    steps: z
      .array(z.number().int().min(1).max(100))
      .min(1)
      .max(20)
      .default([5, 25, 50, 100])
      .refine((s) => s.every((w, i) => i === 0 || w > s[i - 1]!), 'steps: each step must give the candidate more weight than the one before')
      .refine((s) => s[s.length - 1] === 100, 'steps: the last step must be 100')
      .meta({ description: "The candidate's weight (percent) at each step; the last is 100" }),
    minRequests: z.number().int().min(1).max(10_000_000).default(100).meta({ description: 'Candidate requests a step needs before it may advance' }),
    minDurationMs: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 3600_000)
      .default(60_000)
      .meta({ description: 'Time a step lasts at least before it may advance' }),
    gates: z
      .object({
        maxErrorRate: z.number().min(0).max(1).default(0.01).meta({ description: "Candidate's failed share of requests; more rolls back" }),
        maxLatencyRatio: z.number().min(1).max(1000).optional().meta({ description: "Candidate's p99 latency over the baseline's; more rolls back" }),
        minAgreement: z.number().min(0).max(1).optional().meta({
          description: "Share of compared requests where the candidate's top-1 agrees with the baseline's (from shadow comparisons); less rolls back",
        }),
        maxDriftLevel: z
          .enum(DRIFT_LEVELS)
          .optional()
          .meta({ description: "The candidate's input drift level that rolls back (versions with a reference profile)" }),
      })
      .strict()
      .default({ maxErrorRate: 0.01 }),
  })
  .strict();
export type RolloutBody = z.output<typeof rolloutBodySchema>;

export const ROLLOUT_STATUSES = ['running', 'paused', 'completed', 'rolled_back', 'aborted'] as const;
export type RolloutStatus = (typeof ROLLOUT_STATUSES)[number];
export const isFinal = (s: RolloutStatus) => s === 'completed' || s === 'rolled_back' || s === 'aborted';

export interface Rollout extends RolloutBody {
  id: string;
  name: string;
  baseline: number;
  status: RolloutStatus;
  /** Index into `steps` of the step now served. */
  step: number;
  stepStartedAt: number;
  /** The counters of both versions when the step began (figures of a step are the difference). */
  since: { baseline: Figures; candidate: Figures; comparisons?: Comparisons };
  /** Evaluations of this step, and of them those that saw a candidate error. */
  evaluations: number;
  evaluationsSeeingErrors: number;
  /** The last evaluation's figures and verdict, for the dashboard. */
  last?: { at: number; decision: Decision['action']; reason: string; figures: StepFigures };
  reason?: string;
  createdAt: number;
  updatedAt: number;
  by: { tenant: string; keyId: string };
  rev: number;
}

/** Shadow comparisons of the candidate with the baseline: requests compared, top-1 agreements. */
export interface Comparisons {
  compared: number;
  agreed: number;
}

export interface StepFigures {
  candidate: { requests: number; errors: number; errorRate: number | null; p99Ms: number | null };
  baseline: { requests: number; errors: number; errorRate: number | null; p99Ms: number | null };
  latencyRatio: number | null;
  agreement: number | null;
  compared: number;
  drift: DriftLevel | null;
  elapsedMs: number;
}

export type Gate = 'errorRate' | 'latencyRatio' | 'agreement' | 'drift';
export interface Decision {
  action: 'advance' | 'rollback' | 'wait';
  gate?: Gate;
  reason: string;
  figures: StepFigures;
}

export interface AuditRecord {
  at: number;
  action: 'start' | 'advance' | 'complete' | 'rollback' | 'pause' | 'resume' | 'abort';
  step: number;
  weight: number;
  reason: string;
  gate?: Gate;
  figures?: StepFigures;
  /** On a rollback: evaluations of the step that saw candidate errors (1: the first one that saw them rolled back). */
  evaluationsSeeingErrors?: number;
  by?: string;
}

const rate = (n: number, of: number) => (of > 0 ? n / of : null);
const side = (f: Figures) => ({ requests: f.requests, errors: f.errors, errorRate: rate(f.errors, f.requests), p99Ms: percentileMs(f, 0.99) });

/** The step's figures: counters now minus at the step's start. */
export function stepFigures(
  r: Rollout,
  now: { baseline: Figures; candidate: Figures; comparisons?: Comparisons; drift?: DriftLevel | null },
  at: number,
): StepFigures {
  const b = side(diffFigures(now.baseline, r.since.baseline));
  const c = side(diffFigures(now.candidate, r.since.candidate));
  const compared = (now.comparisons?.compared ?? 0) - (r.since.comparisons?.compared ?? 0);
  const agreed = (now.comparisons?.agreed ?? 0) - (r.since.comparisons?.agreed ?? 0);
  return {
    candidate: c,
    baseline: b,
    latencyRatio: c.p99Ms !== null && b.p99Ms !== null ? c.p99Ms / b.p99Ms : null,
    agreement: rate(agreed, compared),
    compared,
    drift: now.drift ?? null,
    elapsedMs: at - r.stepStartedAt,
  };
}

/**
 * What an evaluation does. A gate that already fails rolls back at once: errors count as soon as
 * they make the rate fail even if every request still to come in the step succeeded; the other
 * gates are read once the step has its minimum of requests. Advancing needs every gate read and
 * holding, the minimum of requests and the minimum time.
 */
export function decide(r: Rollout, f: StepFigures): Decision {
  const g = r.gates;
  const c = f.candidate;
  if (c.errors > g.maxErrorRate * Math.max(c.requests, r.minRequests))
    return {
      action: 'rollback',
      gate: 'errorRate',
      reason: `error rate: the candidate failed ${c.errors} of ${c.requests} requests, above ${g.maxErrorRate} of at least ${r.minRequests}`,
      figures: f,
    };
  if (g.maxDriftLevel && f.drift && (f.drift === 'alert' || f.drift === g.maxDriftLevel))
    return { action: 'rollback', gate: 'drift', reason: `drift: the candidate's input drift is at level ${f.drift} (gate: ${g.maxDriftLevel})`, figures: f };
  if (c.requests < r.minRequests) return { action: 'wait', reason: `${c.requests} of ${r.minRequests} candidate requests so far`, figures: f };
  if (g.maxLatencyRatio !== undefined) {
    if (f.latencyRatio === null) return { action: 'wait', reason: 'latency: no answered requests of both versions yet', figures: f };
    if (f.latencyRatio > g.maxLatencyRatio)
      return {
        action: 'rollback',
        gate: 'latencyRatio',
        reason: `p99 latency: the candidate's ${f.candidate.p99Ms!.toFixed(2)} ms is ${f.latencyRatio.toFixed(2)}x the baseline's, above ${g.maxLatencyRatio}x`,
        figures: f,
      };
  }
  if (g.minAgreement !== undefined) {
    if (f.compared < r.minRequests || f.agreement === null)
      return { action: 'wait', reason: `agreement: ${f.compared} of ${r.minRequests} shadow comparisons so far`, figures: f };
    if (f.agreement < g.minAgreement)
      return {
        action: 'rollback',
        gate: 'agreement',
        reason: `agreement: the candidate agreed with the baseline on ${(f.agreement * 100).toFixed(1)}% of ${f.compared} compared requests, below ${g.minAgreement * 100}%`,
        figures: f,
      };
  }
  if (f.elapsedMs < r.minDurationMs) return { action: 'wait', reason: `${f.elapsedMs} of ${r.minDurationMs} ms of the step so far`, figures: f };
  return { action: 'advance', reason: `every gate holds over ${c.requests} candidate requests and ${f.elapsedMs} ms`, figures: f };
}

/** The alias's weights at a step: baseline first, candidate last (so a key that moves, moves onto the candidate). */
export const weightsAt = (r: Pick<Rollout, 'baseline' | 'candidate' | 'steps'>, step: number) => {
  const w = r.steps[step]!;
  return [
    { version: r.baseline, weight: 100 - w },
    { version: r.candidate, weight: w },
  ];
};

// Writes the record only if its revision is still the one read, with its audit record (if any) and,
// for a final state, freeing the alias: all or nothing, so a reader never sees one without the other.
// Compare-and-set with the audit record: core/lua/rollout-save.lua.

export class RolloutStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(name: string, id: string) {
    return `${this.prefix}:records:rollout:${name}:${id}`;
  }
  private auditKey(name: string, id: string) {
    return `${this.prefix}:records:rollout:${name}:${id}:audit`;
  }
  private indexKey(name: string) {
    return `${this.prefix}:records:rollouts:${name}`;
  }
  /** The rollout now moving an alias (one at a time per alias). */
  activeKey(name: string, alias: string) {
    return `${this.prefix}:records:rollout-active:${name}:${alias}`;
  }

  /** Creates the record unless the alias already has a rollout under way; returns false then. */
  async create(r: Rollout): Promise<boolean> {
    const ok = await this.redis.set(this.activeKey(r.name, r.alias), r.id, 'NX');
    if (!ok) return false;
    await this.redis.multi().set(this.key(r.name, r.id), JSON.stringify(r)).zadd(this.indexKey(r.name), r.createdAt, r.id).exec();
    return true;
  }

  async get(name: string, id: string): Promise<Rollout | null> {
    const json = await this.redis.get(this.key(name, id));
    return json ? (JSON.parse(json) as Rollout) : null;
  }

  async activeId(name: string, alias: string): Promise<string | null> {
    return this.redis.get(this.activeKey(name, alias));
  }

  /** Every rollout of `name`, newest first (at most `limit`). */
  async list(name: string, limit = 50): Promise<Rollout[]> {
    const ids = await this.redis.zrevrange(this.indexKey(name), 0, limit - 1);
    const all = await Promise.all(ids.map((id) => this.get(name, id)));
    return all.filter((r): r is Rollout => r !== null);
  }

  /** Saves `next` (and appends `audit`) if the stored record still has revision `next.rev - 1`; a final state frees the alias. */
  async save(next: Rollout, audit?: AuditRecord): Promise<boolean> {
    const res = await runLua(
      this.redis,
      LUA.rolloutSave,
      [this.key(next.name, next.id), this.auditKey(next.name, next.id), this.activeKey(next.name, next.alias)],
      [next.rev - 1, JSON.stringify(next), audit ? JSON.stringify(audit) : '', isFinal(next.status) ? '1' : '0', next.id],
    );
    return res === 1;
  }

  /**
   * Reads, changes and saves a rollout, again on a concurrent write (an evaluation saves every
   * interval). `change` returns the next state and its audit record, or null to leave it.
   */
  async update(name: string, id: string, change: (r: Rollout) => Promise<{ next: Rollout; audit?: AuditRecord } | null>): Promise<Rollout | null> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const r = await this.get(name, id);
      if (!r) return null;
      const c = await change(r);
      if (!c) return r;
      if (await this.save({ ...c.next, rev: r.rev + 1 }, c.audit)) return { ...c.next, rev: r.rev + 1 };
    }
    throw new Error(`rollout ${id}: too many concurrent changes`);
  }

  async history(name: string, id: string): Promise<AuditRecord[]> {
    return (await this.redis.lrange(this.auditKey(name, id), 0, -1)).map((s) => JSON.parse(s) as AuditRecord);
  }
}

/** The scheduler that evaluates a rollout, on the `model` queue. */
export const rolloutSchedulerId = (name: string, id: string) => `rollout:${name}:${id}`;
export const ROLLOUT_JOB = 'rollout';
export const rolloutJobSchema = z.object({ name: z.string(), id: z.string() });

export { EMPTY_FIGURES };

/**
 * Points the alias where the rollout's state says (idempotent, so every evaluation can repeat it and
 * a process that died between saving a state and moving the alias is caught up by the next one).
 */
export async function applyAlias(
  registry: Registry,
  r: Pick<Rollout, 'name' | 'alias' | 'status' | 'steps' | 'step' | 'baseline' | 'candidate' | 'gates'>,
): Promise<void> {
  if (r.status === 'completed') return registry.setAlias(r.name, r.alias, r.candidate);
  if (r.status === 'rolled_back' || r.status === 'aborted') return registry.setAlias(r.name, r.alias, r.baseline);
  if (r.steps[r.step] === 100) return registry.setAlias(r.name, r.alias, r.candidate);
  // An agreement gate needs comparisons: the candidate's requests are mirrored to the baseline.
  const shadow = r.gates.minAgreement !== undefined ? { shadow: { version: r.baseline, fraction: 1 } } : {};
  return registry.setAliasRoute(r.name, r.alias, { versions: weightsAt(r, r.step), ...shadow });
}

/** Both versions' counters now (and the shadow comparisons of the candidate with the baseline). */
export async function currentFigures(redis: Redis, prefix: string, r: Pick<Rollout, 'name' | 'baseline' | 'candidate'>) {
  const [baseline, candidate, c] = await Promise.all([
    readFigures(redis, prefix, r.name, r.baseline),
    readFigures(redis, prefix, r.name, r.candidate),
    readComparison(redis, prefix, r.name, r.candidate, r.baseline),
  ]);
  return { baseline, candidate, comparisons: { compared: c.compared, agreed: c.agreed } };
}

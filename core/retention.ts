// Per-tenant retention: how many days a tenant's datasets, batches, payload logs and job records are
// kept (a Redis hash, set by a platform operator: PUT /v1/tenants/{id}/retention). A repeatable job
// (`retention` on the model queue, workers/retention.ts) erases what is older, through core/erasure.ts,
// so every erasure is as complete as a DELETE and is audited the same way.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { BatchStore } from './batches.ts';
import { type Eraser, type ErasureReport, logsPrefix, newReport } from './erasure.ts';
import type { QueueName } from './config.ts';

const days = z.number().min(0).max(36_500).nullable().optional();

export const retentionRuleSchema = z
  .object({
    datasets: days.meta({ description: 'Days a dataset is kept after its upload; null or absent: forever' }),
    cascadeDatasets: z.boolean().optional().meta({
      description: 'Whether an expired dataset takes the model versions trained on it along (default false: such a dataset is kept and reported as held)',
    }),
    batches: days.meta({ description: 'Days a finished batch (input, outputs, records) is kept after its creation' }),
    logs: days.meta({ description: 'Days payload logs are kept (by their hour partition)' }),
    jobs: days.meta({ description: 'Days the records of finished training and compression jobs are kept' }),
  })
  .strict();
export type RetentionRule = z.infer<typeof retentionRuleSchema>;

export const TENANT_RE = /^[a-zA-Z0-9_.-]{1,64}$/;

export class RetentionRules {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  get key() {
    return `${this.prefix}:records:retention`;
  }

  async set(tenant: string, rule: RetentionRule): Promise<void> {
    await this.redis.hset(this.key, tenant, JSON.stringify(rule));
  }

  async get(tenant: string): Promise<RetentionRule | null> {
    const json = await this.redis.hget(this.key, tenant);
    return json ? retentionRuleSchema.parse(JSON.parse(json)) : null;
  }

  async remove(tenant: string): Promise<boolean> {
    return (await this.redis.hdel(this.key, tenant)) > 0;
  }

  async all(): Promise<Map<string, RetentionRule>> {
    const h = await this.redis.hgetall(this.key);
    return new Map(Object.entries(h).map(([t, json]) => [t, retentionRuleSchema.parse(JSON.parse(json))]));
  }
}

export interface SweepResult {
  erased: { tenant: string; kind: string; id: string }[];
  /** Expired datasets kept because models depend on them and the rule does not cascade. */
  held: { tenant: string; dataset: string; dependents: string[] }[];
  objects: number;
  redisKeys: number;
  /** Items whose erasure failed this time (a job still running): tried again by the next sweep. */
  failed: { tenant: string; kind: string; id: string; error: string }[];
}

/** Items handled per kind per tenant per sweep at most; the rest waits for the next. */
const SWEEP_LIMIT = 1000;

/**
 * One pass of every tenant's rules at `now`: erases the datasets, finished batches, payload-log hours
 * and finished job records older than the rule's days (`dayMs` long each: a day, or less in tests).
 */
export async function sweepRetention(d: { redis: Redis; prefix: string; eraser: Eraser }, dayMs: number, now = Date.now()): Promise<SweepResult> {
  const out: SweepResult = { erased: [], held: [], objects: 0, redisKeys: 0, failed: [] };
  const attempt = async (tenant: string, kind: string, id: string, erase: () => Promise<ErasureReport>) => {
    try {
      add(tenant, kind, id, await erase());
    } catch (e) {
      out.failed.push({ tenant, kind, id, error: (e as Error).message });
    }
  };
  const actor = { tenant: null, keyId: 'retention' };
  const add = (tenant: string, kind: string, id: string, r: ErasureReport) => {
    out.erased.push({ tenant, kind, id });
    out.objects += r.counts.objects;
    out.redisKeys += r.counts.redisKeys;
  };
  const cutoff = (n: number | null | undefined) => (n === null || n === undefined ? null : now - n * dayMs);
  for (const [tenant, rule] of await new RetentionRules(d.redis, d.prefix).all()) {
    const ds = cutoff(rule.datasets);
    if (ds !== null) {
      const ids = await d.redis.zrangebyscore(`${d.prefix}:records:datasets:tenant:${tenant}`, '-inf', ds, 'LIMIT', 0, SWEEP_LIMIT);
      for (const id of ids) {
        const deps = await d.eraser.dependents(id);
        if (deps.length && !rule.cascadeDatasets) {
          out.held.push({ tenant, dataset: id, dependents: deps.map((x) => `${x.name}@${x.version}`) });
          continue;
        }
        await attempt(tenant, 'dataset', id, () => d.eraser.eraseDataset(id, { cascade: true, actor }));
      }
    }
    const bt = cutoff(rule.batches);
    if (bt !== null) {
      const batches = new BatchStore(d.redis, d.prefix);
      const ids = await d.redis.zrangebyscore(`${d.prefix}:records:batches:tenant:${tenant}`, '-inf', bt, 'LIMIT', 0, SWEEP_LIMIT);
      for (const id of ids) {
        const status = await batches.status(id);
        if (status !== null && !BatchStore.isFinal(status)) continue;
        await attempt(tenant, 'batch', id, () => d.eraser.eraseBatch(id, actor));
      }
    }
    const lg = cutoff(rule.logs);
    if (lg !== null) {
      // Records older than the cutoff (a part across it is written again with the newer ones).
      const r = await d.eraser.eraseLogs(tenant, undefined, 0, lg - 1, actor);
      if (r.objects.length) add(tenant, 'logs', logsPrefix(tenant), r);
    }
    const jb = cutoff(rule.jobs);
    if (jb !== null) {
      for (const q of ['train', 'compress'] as QueueName[]) {
        const jobs = await d.eraser.jobsWhere(q, (data) => ((data as { tenant?: string }).tenant ?? 'default') === tenant);
        for (const job of jobs.filter((j) => j.finishedOn !== undefined && j.finishedOn < jb).slice(0, SWEEP_LIMIT)) {
          await attempt(tenant, 'job', `${q}:${job.id}`, async () => {
            const r = newReport();
            await d.eraser.removeJob(r, q, job.id!);
            r.counts = { objects: r.objects.length, redisKeys: r.redisKeys.length, redisEntries: r.redisEntries.length, jobs: r.jobs.length };
            return r;
          });
        }
      }
    }
  }
  return out;
}

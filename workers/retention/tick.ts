// Processor of `retention` jobs (a job scheduler on the `model` queue, every
// MODELQ_RETENTION_INTERVAL_MS): one sweep of every tenant's retention rules (core/retention.ts),
// erasing what expired as a DELETE would, audited with the actor `retention`.
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { AuditStream } from '../../core/audit-stream.ts';
import type { Config, QueueName } from '../../core/config.ts';
import { Eraser } from '../../core/erasure.ts';
import type { Logger } from '../../core/logger.ts';
import { Queues } from '../../core/queues.ts';
import { Registry } from '../../core/registry.ts';
import { sweepRetention, type SweepResult } from '../../core/retention.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';

export const RETENTION_JOB = 'retention';
export const RETENTION_SCHEDULER = 'retention';

export interface RetentionDeps {
  redis: Redis;
  prefix: string;
  store: ArtifactStore;
  cfg: Config;
  logger: Logger;
}

/** What a sweep's job returns (kept in the job's record): counts only, never the ids of what it erased. */
export interface SweepCounts {
  erased: number;
  held: number;
  objects: number;
  redisKeys: number;
  failed: number;
}

/** The per-process state of retention sweeps: one Queues (BullMQ connections shared) for every tick. */
export function retentionRunner(d: RetentionDeps): () => Promise<SweepCounts> {
  let queues: Queues | undefined;
  return async () => {
    queues ??= new Queues(d.prefix, d.redis);
    const q = queues;
    const eraser = new Eraser({
      redis: d.redis,
      prefix: d.prefix,
      store: d.store,
      registry: new Registry(d.redis, d.prefix),
      queue: (name: QueueName) => q.queue(name),
      audit: new AuditStream(d.redis, d.prefix, d.cfg.MODELQ_AUDIT_STREAM_MAX),
    });
    const r: SweepResult = await sweepRetention({ redis: d.redis, prefix: d.prefix, eraser }, d.cfg.MODELQ_RETENTION_DAY_MS);
    const counts = { erased: r.erased.length, held: r.held.length, objects: r.objects, redisKeys: r.redisKeys, failed: r.failed.length };
    if (counts.erased || counts.held) d.logger.info(counts, 'retention sweep');
    for (const f of r.failed) d.logger.warn({ tenant: f.tenant, kind: f.kind, err: f.error }, 'retention: an expired item could not be erased yet');
    return counts;
  };
}

/** Every worker of the `model` queue upserts the same schedule (one scheduler, whoever upserts it). */
export async function scheduleRetention(redis: Redis, prefix: string, cfg: Config): Promise<void> {
  const q = new Queue('model', { connection: redis, prefix });
  await q.upsertJobScheduler(
    RETENTION_SCHEDULER,
    { every: cfg.MODELQ_RETENTION_INTERVAL_MS },
    { name: RETENTION_JOB, data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } },
  );
  await q.close();
}

// Worker figures published into Redis every few seconds, so one /metrics scrape of the producer
// sees the whole platform. Each worker owns one key that expires when it stops publishing.
import type { Redis } from 'ioredis';

export interface WorkerStats {
  id: string;
  host: string;
  pid: number;
  device: string;
  queues: string[];
  startedAt: string;
  jobs: Record<string, { completed: number; failed: number }>;
  engine: {
    runs: number;
    rows: number;
    requests: number;
    computeMs: number;
    errors: number;
    batchSizes?: Record<string, number>;
    perModel?: Record<string, { runs: number; rows: number; requests: number; computeMs: number; waitMs: number }>;
    /** Sessions created (a model loaded on one engine thread) and the time they took. */
    loads?: number;
    loadMs?: number;
    /**
     * Low-priority (shadow mirror) runs: started, held back for primaries, and the primary runs sent
     * to a thread while a mirror's run was on it, of all primary runs (workers/engine/engine.ts lowStats).
     */
    low?: { runs: number; held: number; primaryRuns: number; primaryBehindLow: number };
  };
  /**
   * The models the engine holds: `loaded` on every engine thread (a request pays no load),
   * `loading` (a warm-up under way), `partial` (some threads hold it).
   */
  models?: { sha256: string; label?: string; state: 'loaded' | 'loading' | 'partial'; threads: number }[];
  /**
   * Main-thread event-loop delay over the window since the previous publication (from `since`, epoch
   * ms). `recent`: the last windows with their delay maximum and, from newer workers, the longest
   * stretch the main thread itself was busy (event-loop time not spent waiting for I/O), which unlike
   * the delay does not grow when a loaded machine leaves an idle thread unscheduled.
   */
  eventLoopDelayMs: { p50: number; p99: number; max: number; since: number; recent?: [from: number, to: number, maxMs: number, busyMaxMs?: number][] };
  publishedAt: number;
  rssBytes: number;
}

const indexKey = (prefix: string) => `${prefix}:stats:workers`;
const statKey = (prefix: string, id: string) => `${prefix}:stats:worker:${id}`;

export async function publishWorkerStats(redis: Redis, prefix: string, s: WorkerStats, ttlMs: number): Promise<void> {
  const now = Date.now();
  await redis
    .multi()
    .set(statKey(prefix, s.id), JSON.stringify(s), 'PX', ttlMs)
    .zadd(indexKey(prefix), now, s.id)
    .zremrangebyscore(indexKey(prefix), 0, now - ttlMs)
    .exec();
}

export async function removeWorkerStats(redis: Redis, prefix: string, id: string): Promise<void> {
  await redis.multi().del(statKey(prefix, id)).zrem(indexKey(prefix), id).exec();
}

/** Stats of every worker that published within its TTL. */
export async function readWorkerStats(redis: Redis, prefix: string): Promise<WorkerStats[]> {
  const ids = await redis.zrange(indexKey(prefix), 0, -1);
  if (!ids.length) return [];
  const vals = await redis.mget(ids.map((id) => statKey(prefix, id)));
  return vals.filter((v): v is string => !!v).map((v) => JSON.parse(v) as WorkerStats);
}

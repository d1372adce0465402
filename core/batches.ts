// Batch records in Redis: the spec fixed at submit, the status (moved only by allowed transitions,
// atomically), and per-chunk results written under the chunk's index so a chunk that runs twice
// counts once.
import type { Redis } from 'ioredis';
import { transitionStatus } from './status-transition.ts';
import { LUA, runLua } from './lua/scripts.ts';
import { type BatchSpec, type BatchStatus, FINAL_STATUSES, type PartInfo } from './jobs/batch.ts';

export interface ChunkOutcome {
  completed: number;
  failed: number;
  /** By reference: the part written (for the manifest). */
  part?: PartInfo;
  /** The version that scored the chunk (a batch over a weighted alias) and how long scoring took, in ms. */
  version?: number;
  ms?: number;
  /** A shadow batch: the candidate's pass over the chunk. */
  shadow?: { completed: number; failed: number; ms: number };
}

export interface BatchView {
  id: string;
  status: BatchStatus;
  model: { name: string; version: number };
  format: string;
  /** `total` is null while an upload is still arriving (its rows are not all counted yet). */
  requestCounts: { total: number | null; completed: number; failed: number };
  progress: number;
  chunks: { total: number; done: number };
  /** An upload still arriving: its chunks are scored as they are stored; `chunks.total` and `requestCounts.total` are known once it ends. */
  uploading?: boolean;
  metadata?: Record<string, string>;
  /** The file's columns that feed no input (a target, notes), `id` aside; JSONL: the first row's keys. */
  ignoredColumns?: string[];
  error?: string;
  createdAt: string;
  startedAt?: string;
  completedAt?: string;
  expiresAt: string;
}

export class BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  // Under "records:" so no key can meet a BullMQ key of the `batch` queue ({prefix}:batch:<jobId>).
  private key(id: string) {
    return `${this.prefix}:records:batch:${id}`;
  }
  private chunksKey(id: string) {
    return `${this.prefix}:records:batch:${id}:chunks`;
  }
  private progressKey(id: string) {
    return `${this.prefix}:records:batch:${id}:progress`;
  }
  private get indexKey() {
    return `${this.prefix}:records:batches`;
  }
  /** Each tenant's own index, so a list never reads another tenant's batches. */
  private tenantIndex(tenant: string) {
    return `${this.prefix}:records:batches:tenant:${tenant}`;
  }

  async create(spec: BatchSpec): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key(spec.id), { spec: JSON.stringify(spec), status: 'queued' })
      .zadd(this.indexKey, Date.parse(spec.createdAt), spec.id)
      .zadd(this.tenantIndex(spec.tenant ?? 'default'), Date.parse(spec.createdAt), spec.id)
      .exec();
  }

  /** Replaces the spec (an upload's rows, chunks and bytes once it has all arrived); false when the batch is gone. */
  async updateSpec(spec: BatchSpec): Promise<boolean> {
    const [[, n]] = (await this.redis.multi().hexists(this.key(spec.id), 'spec').exec()) as [[unknown, number]];
    if (!n) return false;
    await this.redis.hset(this.key(spec.id), 'spec', JSON.stringify(spec));
    return true;
  }

  async spec(id: string): Promise<BatchSpec | null> {
    const json = await this.redis.hget(this.key(id), 'spec');
    return json ? (JSON.parse(json) as BatchSpec) : null;
  }

  async status(id: string): Promise<BatchStatus | null> {
    return (await this.redis.hget(this.key(id), 'status')) as BatchStatus | null;
  }

  /** Moves to `to` when the current status is one of `from`; returns the previous status, or null when not allowed. */
  async transition(id: string, to: BatchStatus, from: readonly BatchStatus[]): Promise<BatchStatus | null> {
    // startedAt: the first time it ran; completedAt: when it ended.
    const stamp = to === 'running' ? { first: 'startedAt' } : FINAL_STATUSES.includes(to) ? { every: 'completedAt' } : {};
    return transitionStatus(this.redis, this.key(id), to, new Date().toISOString(), stamp, from);
  }

  /** Moves to `failed` with its reason in one step, so no reader sees a failed batch without its reason. */
  async fail(id: string, reason: string): Promise<void> {
    await runLua(this.redis, LUA.batchFail, [this.key(id)], [new Date().toISOString(), reason.slice(0, 2000)]);
  }

  async recordChunk(id: string, index: number, outcome: ChunkOutcome): Promise<void> {
    await this.redis.multi().hset(this.chunksKey(id), String(index), JSON.stringify(outcome)).hdel(this.progressKey(id), String(index)).exec();
  }

  async chunkProgress(id: string, index: number, rowsDone: number): Promise<void> {
    await this.redis.hset(this.progressKey(id), String(index), rowsDone);
  }

  async outcomes(id: string): Promise<Map<number, ChunkOutcome>> {
    const all = await this.redis.hgetall(this.chunksKey(id));
    return new Map(Object.entries(all).map(([k, v]) => [Number(k), JSON.parse(v) as ChunkOutcome]));
  }

  async view(id: string): Promise<(BatchView & { spec: BatchSpec }) | null> {
    const [h, chunks, progress] = await Promise.all([
      this.redis.hgetall(this.key(id)),
      this.redis.hgetall(this.chunksKey(id)),
      this.redis.hgetall(this.progressKey(id)),
    ]);
    if (!h.spec) return null;
    const spec = JSON.parse(h.spec) as BatchSpec;
    let completed = 0;
    let failed = 0;
    for (const v of Object.values(chunks)) {
      const o = JSON.parse(v) as ChunkOutcome;
      completed += o.completed;
      failed += o.failed;
    }
    const inFlight = Object.values(progress).reduce((n, v) => n + Number(v), 0);
    const status = h.status as BatchStatus;
    const done = completed + failed;
    // By reference, JSONL/CSV rows are counted as they are scored: until then progress is by chunks.
    const uncounted = !spec.totalRows && !!spec.source;
    const chunksDone = Object.keys(chunks).length;
    return {
      spec,
      id: spec.id,
      status,
      model: { name: spec.model.name, version: spec.model.version },
      format: spec.format,
      requestCounts: { total: spec.uploading ? null : uncounted ? done : spec.totalRows, completed, failed },
      progress:
        status === 'completed'
          ? 1
          : spec.uploading
            ? 0
            : uncounted
              ? spec.chunks && chunksDone / spec.chunks
              : spec.totalRows
                ? Math.min(1, (done + inFlight) / spec.totalRows)
                : 0,
      chunks: { total: spec.chunks, done: chunksDone },
      ...(spec.uploading ? { uploading: true } : {}),
      ...(spec.metadata ? { metadata: spec.metadata } : {}),
      ...(spec.ignoredColumns?.length ? { ignoredColumns: spec.ignoredColumns } : {}),
      ...(h.error ? { error: h.error } : {}),
      createdAt: spec.createdAt,
      ...(h.startedAt ? { startedAt: h.startedAt } : {}),
      ...(h.completedAt ? { completedAt: h.completedAt } : {}),
      expiresAt: spec.expiresAt,
    };
  }

  /** A tenant's batches, newest first. */
  async list(tenant: string, offset: number, limit: number): Promise<string[]> {
    return this.redis.zrevrange(this.tenantIndex(tenant), offset, offset + limit - 1);
  }

  async count(tenant: string): Promise<number> {
    return this.redis.zcard(this.tenantIndex(tenant));
  }

  /** Ids of batches created before `before` (epoch ms). */
  async createdBefore(before: number, limit = 1000): Promise<string[]> {
    return this.redis.zrangebyscore(this.indexKey, 0, before, 'LIMIT', 0, limit);
  }

  async remove(id: string): Promise<void> {
    const spec = await this.spec(id);
    await this.redis
      .multi()
      .del(this.key(id), this.chunksKey(id), this.progressKey(id))
      .zrem(this.indexKey, id)
      .zrem(this.tenantIndex(spec?.tenant ?? 'default'), id)
      .exec();
  }

  static isFinal(s: BatchStatus | null): boolean {
    return s !== null && FINAL_STATUSES.includes(s);
  }
}

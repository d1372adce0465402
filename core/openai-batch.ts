// OpenAI-compatible Files and Batches: their records in Redis (files by tenant, batches with status,
// Unix-second timestamps and per-chunk counts), the job data of their flow, and the mapping to the
// objects OpenAI's API returns. File bytes live in the artifact store, never in Redis.
import type { Redis } from 'ioredis';
import { LUA, runLua } from './lua/scripts.ts';
import { z } from 'zod';
import { tensorSpecSchema } from './tensors.ts';

export const OPENAI_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type OpenaiStatus = (typeof OPENAI_STATUSES)[number];
export const OPENAI_FINAL: readonly OpenaiStatus[] = ['failed', 'completed', 'expired', 'cancelled'];

/** Job names on the `batch` queue (validate, finalize) and the `score` queue (lines). */
export const OPENAI_JOBS = { validate: 'openai-validate', lines: 'openai-lines', finalize: 'openai-finalize', cleanup: 'openai-cleanup' } as const;
export const isOpenaiJob = (name: string) => name.startsWith('openai-');

export const openaiKeys = {
  file: (id: string) => `openai/files/${id}`,
  dir: (batchId: string) => `openai/batches/${batchId}`,
  output: (batchId: string, i: number) => `openai/batches/${batchId}/out/${String(i).padStart(6, '0')}.jsonl`,
  errors: (batchId: string, i: number) => `openai/batches/${batchId}/err/${String(i).padStart(6, '0')}.jsonl`,
};

export interface FileRecord {
  id: string;
  tenant: string;
  bytes: number;
  created_at: number;
  expires_at?: number;
  filename: string;
  purpose: string;
}

export const resolvedModelSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  sha256: z.string(),
  inputs: z.array(tensorSpecSchema),
  outputs: z.array(tensorSpecSchema),
});
export type ResolvedModel = z.infer<typeof resolvedModelSchema>;

export interface BatchRecord {
  id: string;
  tenant: string;
  endpoint: string;
  input_file_id: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  created_at: number;
  expires_at: number;
  /** Set by validation: the models the lines name, resolved once; the line count; the chunk ranges' count. */
  models?: Record<string, ResolvedModel>;
  total?: number;
  chunks?: number;
}

export const linesJobSchema = z.object({ batchId: z.string(), index: z.number().int().min(0), start: z.number().int().min(0), end: z.number().int().min(0) });
export type LinesJob = z.infer<typeof linesJobSchema>;
export const batchIdJobSchema = z.object({ batchId: z.string() });

export interface LineError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

const nowSec = () => Math.floor(Date.now() / 1000);

export class OpenaiStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private fileKey(id: string) {
    return `${this.prefix}:records:openai:file:${id}`;
  }
  private filesIndex(tenant: string) {
    return `${this.prefix}:records:openai:files:${tenant}`;
  }
  private batchKey(id: string) {
    return `${this.prefix}:records:openai:batch:${id}`;
  }
  private chunksKey(id: string) {
    return `${this.prefix}:records:openai:batch:${id}:chunks`;
  }
  private batchesIndex(tenant: string) {
    return `${this.prefix}:records:openai:batches:${tenant}`;
  }
  private get seqKey() {
    return `${this.prefix}:records:openai:seq`;
  }
  /** Every tenant's files and batches by creation time (ms), for retention. */
  private byTime(kind: 'files' | 'batches') {
    return `${this.prefix}:records:openai:${kind}:by-time`;
  }

  async putFile(f: FileRecord): Promise<void> {
    const seq = await this.redis.incr(this.seqKey);
    await this.redis
      .multi()
      .set(this.fileKey(f.id), JSON.stringify(f))
      .zadd(this.filesIndex(f.tenant), seq, f.id)
      .zadd(this.byTime('files'), f.created_at * 1000, f.id)
      .exec();
  }

  /** Ids of files or batches created before `before` (epoch ms). */
  async createdBefore(kind: 'files' | 'batches', before: number, limit = 1000): Promise<string[]> {
    return this.redis.zrangebyscore(this.byTime(kind), 0, before, 'LIMIT', 0, limit);
  }

  /** Any tenant's file record (retention), or null. */
  async anyFile(id: string): Promise<FileRecord | null> {
    const json = await this.redis.get(this.fileKey(id));
    return json ? (JSON.parse(json) as FileRecord) : null;
  }

  async removeBatch(id: string): Promise<void> {
    const b = await this.batch(id);
    await this.redis
      .multi()
      .del(this.batchKey(id), this.chunksKey(id))
      .zrem(this.byTime('batches'), id)
      .zrem(this.batchesIndex(b?.record.tenant ?? 'default'), id)
      .exec();
  }

  /** The file when it exists and belongs to `tenant`. */
  async file(id: string, tenant: string): Promise<FileRecord | null> {
    const json = await this.redis.get(this.fileKey(id));
    const f = json ? (JSON.parse(json) as FileRecord) : null;
    return f && f.tenant === tenant ? f : null;
  }

  async deleteFile(f: FileRecord): Promise<void> {
    await this.redis.multi().del(this.fileKey(f.id)).zrem(this.filesIndex(f.tenant), f.id).zrem(this.byTime('files'), f.id).exec();
  }

  async createBatch(b: BatchRecord): Promise<void> {
    const seq = await this.redis.incr(this.seqKey);
    await this.redis
      .multi()
      .hset(this.batchKey(b.id), { record: JSON.stringify(b), status: 'validating' })
      .zadd(this.batchesIndex(b.tenant), seq, b.id)
      .zadd(this.byTime('batches'), b.created_at * 1000, b.id)
      .exec();
  }

  async batch(id: string): Promise<{ record: BatchRecord; fields: Record<string, string> } | null> {
    const h = await this.redis.hgetall(this.batchKey(id));
    return h.record ? { record: JSON.parse(h.record) as BatchRecord, fields: h } : null;
  }

  async updateRecord(b: BatchRecord): Promise<void> {
    await this.redis.hset(this.batchKey(b.id), 'record', JSON.stringify(b));
  }

  async setFields(id: string, fields: Record<string, string>): Promise<void> {
    await this.redis.hset(this.batchKey(id), fields);
  }

  async status(id: string): Promise<OpenaiStatus | null> {
    return (await this.redis.hget(this.batchKey(id), 'status')) as OpenaiStatus | null;
  }

  /** Moves to `to` when the current status is one of `from`; the previous status, or null. */
  async transition(id: string, to: OpenaiStatus, from: readonly OpenaiStatus[]): Promise<OpenaiStatus | null> {
    return ((await runLua(this.redis, LUA.openaiBatchTransition, [this.batchKey(id)], [to, nowSec(), ...from])) as OpenaiStatus | null) ?? null;
  }

  async recordChunk(id: string, index: number, counts: { completed: number; failed: number; expired: number }): Promise<void> {
    await this.redis.hset(this.chunksKey(id), String(index), JSON.stringify(counts));
  }

  async chunkCounts(id: string): Promise<{ done: number; completed: number; failed: number; expired: number }> {
    const sum = { done: 0, completed: 0, failed: 0, expired: 0 };
    for (const v of Object.values(await this.redis.hgetall(this.chunksKey(id)))) {
      const c = JSON.parse(v) as { completed: number; failed: number; expired: number };
      sum.done++;
      sum.completed += c.completed;
      sum.failed += c.failed;
      sum.expired += c.expired;
    }
    return sum;
  }

  /** A page of ids, newest first (or oldest first with order "asc"), after the cursor `after`. */
  async page(
    kind: 'files' | 'batches',
    tenant: string,
    after: string | undefined,
    limit: number,
    order: 'asc' | 'desc' = 'desc',
  ): Promise<{ ids: string[]; hasMore: boolean }> {
    const key = kind === 'files' ? this.filesIndex(tenant) : this.batchesIndex(tenant);
    let from = 0;
    if (after) {
      const rank = order === 'desc' ? await this.redis.zrevrank(key, after) : await this.redis.zrank(key, after);
      if (rank === null) return { ids: [], hasMore: false };
      from = rank + 1;
    }
    const ids = order === 'desc' ? await this.redis.zrevrange(key, from, from + limit) : await this.redis.zrange(key, from, from + limit);
    return { ids: ids.slice(0, limit), hasMore: ids.length > limit };
  }
}

/** The OpenAI file object. */
export const fileObject = (f: FileRecord) => ({
  id: f.id,
  object: 'file' as const,
  bytes: f.bytes,
  created_at: f.created_at,
  ...(f.expires_at ? { expires_at: f.expires_at } : {}),
  filename: f.filename,
  purpose: f.purpose,
  status: 'processed' as const,
});

/** The OpenAI batch object, from the record, its status fields and the chunk counts. */
export function batchObject(b: BatchRecord, h: Record<string, string>, counts: { completed: number; failed: number; expired: number }) {
  const ts = (s: string) => (h[`${s}_at`] ? Number(h[`${s}_at`]) : null);
  const errors = h.errors ? { object: 'list' as const, data: JSON.parse(h.errors) as LineError[] } : null;
  return {
    id: b.id,
    object: 'batch' as const,
    endpoint: b.endpoint,
    errors,
    input_file_id: b.input_file_id,
    completion_window: b.completion_window,
    status: h.status as OpenaiStatus,
    output_file_id: h.output_file_id ?? null,
    error_file_id: h.error_file_id ?? null,
    created_at: b.created_at,
    in_progress_at: ts('in_progress'),
    expires_at: b.expires_at,
    finalizing_at: ts('finalizing'),
    completed_at: ts('completed'),
    failed_at: ts('failed'),
    expired_at: ts('expired'),
    cancelling_at: ts('cancelling'),
    cancelled_at: ts('cancelled'),
    request_counts: { total: b.total ?? 0, completed: counts.completed, failed: counts.failed + counts.expired },
    metadata: b.metadata,
  };
}

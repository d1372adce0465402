// OpenAI-compatible Files and Batches: their records in Redis (files by tenant, batches with status
// and Unix-second timestamps), the job data of their flow, and the mapping to the objects OpenAI's
// API returns. An OpenAI batch runs as native batches (core/batches.ts), one per model its lines
// name: their chunks, parts and counts are the native ones. File bytes live in the artifact store.
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { transitionStatus } from './status-transition.ts';
import { tensorSpecSchema } from './tensors.ts';

export const OPENAI_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type OpenaiStatus = (typeof OPENAI_STATUSES)[number];
export const OPENAI_FINAL: readonly OpenaiStatus[] = ['failed', 'completed', 'expired', 'cancelled'];

/** Job names on the `batch` queue: validate (then the native flows), expire (at the window's end), finalize (after the native batches), cleanup. */
export const OPENAI_JOBS = { validate: 'openai-validate', expire: 'openai-expire', finalize: 'openai-finalize', cleanup: 'openai-cleanup' } as const;
export const isOpenaiJob = (name: string) => name.startsWith('openai-');

export const openaiKeys = {
  file: (id: string) => `openai/files/${id}`,
  dir: (batchId: string) => `openai/batches/${batchId}`,
  /** One line per request line: which native batch and rows carry it, or its own error (workers/inference/openai-map.ts). */
  lineMap: (batchId: string) => `openai/batches/${batchId}/lines.jsonl`,
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
  /** Set by validation: the models the lines name, resolved once; the line count; the lines refused before scoring. */
  models?: Record<string, ResolvedModel>;
  total?: number;
  refused?: number;
  /** Set by validation: the native batches that score the lines, one per model (none when the window had passed). */
  natives?: NativePart[];
}

/** A native batch of an OpenAI batch: its id, its model (`name@version`) and its rows. */
export interface NativePart {
  id: string;
  model: string;
  rows: number;
}

/** Request counts of a finished batch, kept once it has ended (the native batches may be removed first). */
export interface LineCounts {
  completed: number;
  failed: number;
  expired: number;
}

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
      .del(this.batchKey(id))
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
    // The time a status is first reached is kept in "<status>_at" (failed_at, expired_at, ...).
    return transitionStatus(this.redis, this.batchKey(id), to, String(nowSec()), { first: `${to}_at` }, from);
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

/** The OpenAI batch object, from the record, its status fields and the request counts so far. */
export function batchObject(b: BatchRecord, h: Record<string, string>, counts: LineCounts) {
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

/**
 * A batch's request counts: exact once it has ended (kept in its `counts` field); while it runs, the
 * native batches' row counts spread over the lines they carry (exact when every line is one row),
 * the lines refused before scoring counted as failed from the start.
 */
export function requestCounts(b: BatchRecord, h: Record<string, string>, native: { completed: number; failed: number }[]): LineCounts {
  if (h.counts) return JSON.parse(h.counts) as LineCounts;
  const refused = b.refused ?? 0;
  const rows = (b.natives ?? []).reduce((n, x) => n + x.rows, 0);
  const scored = (b.total ?? 0) - refused;
  const share = (r: number) => (rows ? Math.min(scored, Math.floor((r * scored) / rows)) : 0);
  const done = native.reduce((a, v) => ({ completed: a.completed + v.completed, failed: a.failed + v.failed }), { completed: 0, failed: 0 });
  return { completed: share(done.completed), failed: refused + share(done.failed), expired: 0 };
}

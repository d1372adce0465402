// Payload logs (issue 33 item 3): a sampled share of a model's online requests and answers, as
// Parquet parts in the artifact store (encrypted with it when the store is), partitioned so a range
// can be listed and erased by key prefix:
//
//   logs/<owner tenant>/<model>/<version>/<yyyy-mm-ddThh>/part-<first ms>-<last ms>-<rand>.parquet
//
// A part holds the records of one version and one UTC hour; its name carries the times of its first
// and last record, so a time range is answered from a listing without reading a part. The producer
// buffers the records (producer/inference/payload-log.ts); this file holds what every process may
// need: the per-model settings, redaction, the Parquet encoding, and listing, reading and erasing.
import { randomBytes } from 'node:crypto';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { toProtocolTensor, type WireTensor } from './jobs/infer.ts';
import type { ArtifactStore } from './storage/artifact-store.ts';

export const LOGS_ROOT = 'logs';

/** A redaction: `input.<name>` (an input tensor, a column of a tabular model), `output.<name>`, or a bare key. */
const REDACT_RE = /^((input|output)\.)?[A-Za-z0-9_.:/-]{1,200}$/;

export const loggingConfigSchema = z
  .object({
    sample: z.number().min(0).max(1).meta({ description: 'Share of online requests logged, 0-1 (0: none)' }),
    redact: z
      .array(z.string().regex(REDACT_RE, 'must be "input.<name>", "output.<name>" or a key name (letters, digits, _ . : / -)'))
      .max(100)
      .default([])
      .meta({
        description:
          '"input.<name>": the input tensor (or tabular column) of that name; "output.<name>": the output; a bare name: inputs and outputs of that name and that key at any depth of JSON objects inside BYTES values',
      }),
  })
  .strict();
export type LoggingConfig = z.infer<typeof loggingConfigSchema>;

/** Per-model settings in Redis, beside the registry's records of the model: the model's own, and per alias. */
export class LoggingConfigs {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  key(model: string): string {
    return `${this.prefix}:records:model:${model}:logging`;
  }

  private static field = (alias: string | null) => (alias === null ? 'model' : `alias:${alias}`);

  async get(model: string, alias: string | null): Promise<LoggingConfig | null> {
    const json = await this.redis.hget(this.key(model), LoggingConfigs.field(alias));
    return json ? loggingConfigSchema.parse(JSON.parse(json)) : null;
  }

  /** Every setting of the model: `model`, and `alias:<name>` per alias. */
  async all(model: string): Promise<Map<string, LoggingConfig>> {
    const h = await this.redis.hgetall(this.key(model));
    return new Map(Object.entries(h).map(([k, v]) => [k, loggingConfigSchema.parse(JSON.parse(v))]));
  }

  /** Sets, or with null removes, the model's (alias null) or an alias's setting. */
  async set(model: string, alias: string | null, cfg: LoggingConfig | null): Promise<void> {
    if (cfg) await this.redis.hset(this.key(model), LoggingConfigs.field(alias), JSON.stringify(cfg));
    else await this.redis.hdel(this.key(model), LoggingConfigs.field(alias));
  }
}

/** What serves a request: the alias's setting when the request named one (none named: `latest`), else the model's. */
export function effectiveConfig(all: Map<string, LoggingConfig>, alias: string | null): LoggingConfig | null {
  return (alias !== null ? all.get(`alias:${alias}`) : undefined) ?? all.get('model') ?? null;
}

/** One logged request. */
export interface PayloadRecord {
  /** The platform's id of the request (unique). */
  request_id: string;
  /** The `id` the client gave, if any. */
  client_id: string | null;
  /** When the answer was ready, epoch ms. */
  time: number;
  /** The caller's tenant and key id (never the key). */
  tenant: string;
  key_id: string;
  model: string;
  version: number;
  /** The alias the request named (`latest` when it named none), null for a version number. */
  alias: string | null;
  latency_ms: number;
  /** JSON text: `[{ name, datatype, shape, data }]`, redacted; null when left out (`truncated`). */
  inputs: string | null;
  outputs: string | null;
  /** The error's code when the request failed after it was checked. */
  error: string | null;
  /** True when the payload was larger than MODELQ_PAYLOAD_LOG_MAX_RECORD_KB and left out. */
  truncated: boolean;
}

// ---- redaction ----

interface PlainTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

/** Any tensor form (JSON, packed, bytes) as plain JSON values. */
export function plainTensor(t: WireTensor): PlainTensor {
  const p = toProtocolTensor(t);
  const data = p.data as unknown;
  return { name: p.name, datatype: p.datatype, shape: [...p.shape], data: Array.isArray(data) ? data : Array.from(data as ArrayLike<unknown>) };
}

export interface Redactor {
  /** The tensors of one side without the redacted ones, and BYTES values with redacted JSON keys removed. */
  (tensors: readonly WireTensor[], side: 'input' | 'output'): PlainTensor[];
}

function dropKeys(v: unknown, keys: ReadonlySet<string>): unknown {
  if (Array.isArray(v)) return v.map((x) => dropKeys(x, keys));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (!keys.has(k)) out[k] = dropKeys(x, keys);
    return out;
  }
  return v;
}

/**
 * Strings that are JSON objects or arrays lose the redacted keys at any depth. Any other string
 * that contains a redacted key's name followed by a colon or equals sign is replaced whole, since
 * its value cannot be told apart from the rest of it.
 */
function redactString(s: string, keys: ReadonlySet<string>, loose: RegExp | null): string {
  const t = s.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.stringify(dropKeys(JSON.parse(s), keys));
    } catch {
      // not JSON: the loose check below
    }
  }
  return loose?.test(s) ? '[redacted]' : s;
}

export function redactor(redact: readonly string[]): Redactor {
  const inputs = new Set<string>();
  const outputs = new Set<string>();
  const keys = new Set<string>();
  for (const r of redact) {
    if (r.startsWith('input.')) inputs.add(r.slice(6));
    else if (r.startsWith('output.')) outputs.add(r.slice(7));
    else {
      inputs.add(r);
      outputs.add(r);
      keys.add(r);
    }
  }
  const esc = (k: string) => k.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const loose = keys.size ? new RegExp(`(^|[^A-Za-z0-9_])(${[...keys].map(esc).join('|')})["']?\\s*[:=]`) : null;
  return (tensors, side) => {
    const names = side === 'input' ? inputs : outputs;
    const out: PlainTensor[] = [];
    for (const t of tensors) {
      if (names.has(t.name)) continue;
      const p = plainTensor(t);
      if (keys.size && p.datatype === 'BYTES') p.data = p.data.map((x) => (typeof x === 'string' ? redactString(x, keys, loose) : x));
      out.push(p);
    }
    return out;
  };
}

// ---- Parquet parts ----

export type LogCodec = 'SNAPPY' | 'UNCOMPRESSED';

/** The records of one part as a Parquet file: one row per request, inputs and outputs as JSON text. */
export function encodeLogPart(records: readonly PayloadRecord[], codec: LogCodec = 'SNAPPY'): Uint8Array {
  const col = <K extends keyof PayloadRecord>(k: K) => records.map((r) => r[k]);
  const buf = parquetWriteBuffer({
    codec,
    // Bounds of a page's strings (payload text) in the footer would be plaintext the redaction saw, but keep the footer small.
    statistics: false,
    columnData: [
      { name: 'request_id', data: col('request_id'), type: 'STRING', nullable: false },
      { name: 'client_id', data: col('client_id'), type: 'STRING' },
      { name: 'time', data: records.map((r) => new Date(r.time)), type: 'TIMESTAMP', nullable: false },
      { name: 'tenant', data: col('tenant'), type: 'STRING', nullable: false },
      { name: 'key_id', data: col('key_id'), type: 'STRING', nullable: false },
      { name: 'model', data: col('model'), type: 'STRING', nullable: false },
      { name: 'version', data: col('version'), type: 'INT32', nullable: false },
      { name: 'alias', data: col('alias'), type: 'STRING' },
      { name: 'latency_ms', data: col('latency_ms'), type: 'DOUBLE', nullable: false },
      { name: 'inputs', data: col('inputs'), type: 'STRING' },
      { name: 'outputs', data: col('outputs'), type: 'STRING' },
      { name: 'error', data: col('error'), type: 'STRING' },
      { name: 'truncated', data: col('truncated'), type: 'BOOLEAN', nullable: false },
    ],
    rowGroupSize: Math.max(1, records.length),
  });
  return new Uint8Array(buf);
}

const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const ms = (v: unknown): number => (v instanceof Date ? v.getTime() : Number(v));

export async function decodeLogPart(bytes: Uint8Array): Promise<PayloadRecord[]> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const rows = (await parquetReadObjects({ file })) as Record<string, unknown>[];
  return rows.map((r) => ({
    request_id: String(r.request_id),
    client_id: str(r.client_id),
    time: ms(r.time),
    tenant: String(r.tenant),
    key_id: String(r.key_id),
    model: String(r.model),
    version: Number(r.version),
    alias: str(r.alias),
    latency_ms: Number(r.latency_ms),
    inputs: str(r.inputs),
    outputs: str(r.outputs),
    error: str(r.error),
    truncated: r.truncated === true,
  }));
}

// ---- keys ----

/** The UTC hour of a time as its partition name: `2026-12-07T19`. */
export const hourOf = (t: number) => new Date(t).toISOString().slice(0, 13);

/** Which logs: a tenant's (the models' owner), one model's, one version's. */
export interface LogScope {
  tenant: string;
  model?: string;
  version?: number;
}

/** The key prefix of a scope, ending in "/". */
export function logPrefix(s: LogScope): string {
  if (s.version !== undefined && s.model === undefined) throw new Error('a log scope with a version needs its model');
  return [LOGS_ROOT, s.tenant, s.model, s.version].filter((x) => x !== undefined).join('/') + '/';
}

export function logPartKey(tenant: string, model: string, version: number, first: number, last: number): string {
  return `${logPrefix({ tenant, model, version })}${hourOf(first)}/part-${first}-${last}-${randomBytes(4).toString('hex')}.parquet`;
}

export interface LogPart {
  key: string;
  bytes: number;
  tenant: string;
  model: string;
  version: number;
  hour: string;
  /** Times of the part's first and last record (epoch ms). */
  first: number;
  last: number;
}

const PART_RE = /^logs\/([^/]+)\/([^/]+)\/([1-9][0-9]*)\/(\d{4}-\d{2}-\d{2}T\d{2})\/part-(\d{1,15})-(\d{1,15})-[0-9a-f]+\.parquet$/;

export function parseLogPartKey(key: string, bytes = 0): LogPart | null {
  const m = PART_RE.exec(key);
  if (!m) return null;
  return { key, bytes, tenant: m[1]!, model: m[2]!, version: Number(m[3]), hour: m[4]!, first: Number(m[5]), last: Number(m[6]) };
}

/** A time range, epoch ms, both ends inclusive; an open end is unbounded. */
export interface TimeRange {
  from?: number;
  to?: number;
}

const overlaps = (p: LogPart, r: TimeRange) => (r.from === undefined || p.last >= r.from) && (r.to === undefined || p.first <= r.to);
const inRange = (t: number, r: TimeRange) => (r.from === undefined || t >= r.from) && (r.to === undefined || t <= r.to);

/** Parts listed per call at most by default (a listing's work is bounded). */
export const LIST_LIMIT = 100_000;

/**
 * The parts of `scope` holding records in `range` (by the times in their names), oldest first.
 * Lists at most `limit` objects under the scope's prefix (in key order) before filtering.
 */
export async function listLogParts(store: ArtifactStore, scope: LogScope, range: TimeRange = {}, limit = LIST_LIMIT): Promise<LogPart[]> {
  const listed = await store.list(logPrefix(scope), limit);
  const parts: LogPart[] = [];
  for (const o of listed) {
    const p = parseLogPartKey(o.key, o.bytes);
    if (p && overlaps(p, range)) parts.push(p);
  }
  return parts.sort((a, b) => a.first - b.first || a.version - b.version || (a.key < b.key ? -1 : 1));
}

/**
 * The records of `scope` in `range`, oldest first (merged across versions and producers), at most
 * `limit`. Parts are read in the order of their first record; only parts whose times overlap the
 * records not yet given out are held at once.
 */
export async function* readLogRecords(store: ArtifactStore, scope: LogScope, range: TimeRange, limit: number): AsyncGenerator<PayloadRecord> {
  const pending = await listLogParts(store, scope, range);
  let buf: PayloadRecord[] = [];
  let head = 0;
  let n = 0;
  let next = 0;
  while (next < pending.length || head < buf.length) {
    // Every part that may hold a record as old as the oldest held one is read first.
    let loaded = false;
    while (next < pending.length && (head >= buf.length || pending[next]!.first <= buf[head]!.time)) {
      const records = (await decodeLogPart(await store.get(pending[next++]!.key))).filter((r) => inRange(r.time, range));
      buf = buf.slice(head).concat(records);
      head = 0;
      loaded = true;
    }
    if (loaded) buf.sort((a, b) => a.time - b.time);
    if (head >= buf.length) continue;
    if (n++ >= limit) return;
    yield buf[head++]!;
  }
}

export interface LogErasure {
  /** Parts deleted whole. */
  deleted: string[];
  /** Parts that also held records outside the range: rewritten without the range's records (under a new key; the old one deleted). */
  rewritten: { from: string; to: string | null }[];
  /** Records erased. */
  records: number;
  /** Stored bytes of the deleted and replaced parts. */
  bytes: number;
}

/**
 * Erases the records of `scope` in `range`: a part inside the range is deleted, a part that straddles
 * its ends is rewritten with only the records outside it. Without a range the whole scope's prefix is
 * deleted. Returns what was erased (an erasure report's part).
 */
export async function deleteLogRange(
  store: ArtifactStore,
  scope: LogScope,
  range: TimeRange = {},
  opts: { codec?: LogCodec; limit?: number } = {},
): Promise<LogErasure> {
  const parts = await listLogParts(store, scope, range, opts.limit);
  const report: LogErasure = { deleted: [], rewritten: [], records: 0, bytes: 0 };
  for (const p of parts) {
    const whole = inRange(p.first, range) && inRange(p.last, range);
    if (whole) {
      report.records += (await decodeLogPart(await store.get(p.key))).length;
      await store.delete(p.key);
      report.deleted.push(p.key);
    } else {
      const records = await decodeLogPart(await store.get(p.key));
      const keep = records.filter((r) => !inRange(r.time, range));
      report.records += records.length - keep.length;
      let to: string | null = null;
      if (keep.length) {
        const times = keep.map((r) => r.time);
        to = logPartKey(
          p.tenant,
          p.model,
          p.version,
          times.reduce((a, b) => Math.min(a, b)),
          times.reduce((a, b) => Math.max(a, b)),
        );
        await store.put(to, encodeLogPart(keep, opts.codec));
      }
      await store.delete(p.key);
      report.rewritten.push({ from: p.key, to });
    }
    report.bytes += p.bytes;
  }
  if (range.from === undefined && range.to === undefined) await store.deletePrefix(logPrefix(scope));
  return report;
}

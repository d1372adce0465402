// Training datasets: CSV or JSONL files in the artifact store, profiled once at upload (rows, column
// types, missing and distinct counts) so a training request can be checked before it is queued.
// The file is read as records by the same code at upload and in the trainer.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { parse as csvParse, CsvError } from 'csv-parse';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { badRequest } from './errors.ts';
import { textTokens } from './text.ts';

export const DATASET_FORMATS = ['csv', 'jsonl'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];
/**
 * `category`: few distinct short strings (one-hot encoded as a feature); `text`: free text (TF-IDF).
 * `string` is what profiles written before text columns said for both; it reads as `category`.
 */
export const COLUMN_TYPES = ['number', 'integer', 'category', 'text', 'string'] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];
/** A column of numbers (a feature as is); category, text and the legacy string columns are not. */
export const isNumericType = (t: ColumnType | undefined) => t === 'number' || t === 'integer';
/** The types a training request may give a column (`columnTypes`). */
export const FEATURE_COLUMN_TYPES = ['number', 'integer', 'category', 'text'] as const;
/** Distinct values are counted up to this many (then "more"); enough to pick classes vs. regression. */
export const DISTINCT_CAP = 1000;
/** A string column whose values average at least this many tokens is text, not a category. */
export const TEXT_MIN_MEAN_TOKENS = 3;
/** Identifier detection (ColumnStats.unique) keeps at most this many values of at most this many characters. */
export const UNIQUE_CAP = 200_000;
export const UNIQUE_MAX_CHARS = 64;

export const columnSchema = z.object({ name: z.string(), type: z.enum(COLUMN_TYPES) });
export type Column = z.infer<typeof columnSchema>;
export const lengthStatsSchema = z.object({ min: z.number(), mean: z.number(), p50: z.number(), p95: z.number(), max: z.number() });
export type LengthStats = z.infer<typeof lengthStatsSchema>;
export const columnStatsSchema = z.object({
  name: z.string(),
  missing: z.number().int(),
  /** Distinct non-missing values, capped at DISTINCT_CAP + 1. */
  distinct: z.number().int(),
  /**
   * String columns: whether every value is different and short (at most UNIQUE_MAX_CHARS), as an
   * identifier's are; false past UNIQUE_CAP values. Absent for numbers and in older profiles.
   */
  unique: z.boolean().optional(),
  /** Text columns: lengths of the non-missing values in characters (code points) and in tokens (as the trainer tokenizes). */
  length: z.object({ chars: lengthStatsSchema, tokens: lengthStatsSchema }).optional(),
});
export type ColumnStats = z.infer<typeof columnStatsSchema>;

export const datasetRecordSchema = z.object({
  id: z.string(),
  name: z.string(),
  format: z.enum(DATASET_FORMATS),
  /** Artifact key of the file. */
  key: z.string(),
  bytes: z.number().int(),
  rows: z.number().int(),
  columns: z.array(columnSchema),
  stats: z.array(columnStatsSchema),
  createdAt: z.string(),
  /** The tenant that uploaded it; others never see it. */
  tenant: z.string().optional(),
});
export type DatasetRecord = z.infer<typeof datasetRecordSchema>;

export const DATASET_ID_RE = /^ds_[0-9a-f]{20}$/;
export const newDatasetId = () => `ds_${randomBytes(10).toString('hex')}`;
export const datasetKey = (id: string, format: DatasetFormat) => `datasets/${id}/data.${format}`;

/** One record of the file: `line` is the 1-based line it ends on; CSV values are strings, empty (or NaN) ones null. */
export interface DatasetRow {
  line: number;
  values: Record<string, unknown>;
}

const lineError = (line: number, msg: string) => badRequest(`line ${line}: ${msg}`);

/** Longest row (JSONL line, CSV record) read by default: MODELQ_MAX_ROW_BYTES's default, 16 MiB. */
export const DEFAULT_MAX_ROW_BYTES = 16 * 1024 * 1024;

export interface RowReadOptions {
  /** A longer row is a 400 naming its line, never buffered whole. Default DEFAULT_MAX_ROW_BYTES. */
  maxRowBytes?: number;
}

/** The records of a CSV or JSONL stream. Malformed input throws a 400 naming the line. */
export async function* datasetRows(source: AsyncIterable<Buffer | string>, format: DatasetFormat, opts: RowReadOptions = {}): AsyncGenerator<DatasetRow> {
  const maxRowBytes = opts.maxRowBytes ?? DEFAULT_MAX_ROW_BYTES;
  if (format === 'jsonl') yield* jsonlRows(source, maxRowBytes);
  else yield* csvRows(source, maxRowBytes);
}

const tooLong = (line: number, max: number) => lineError(line, `is longer than ${max} bytes (MODELQ_MAX_ROW_BYTES)`);

/**
 * Lines as bytes: each chunk is searched once for newlines and the pieces of a line that spans
 * chunks are kept as a list, joined once when it ends, so reading is linear in the file's size
 * however long a line is. A line cannot end inside a UTF-8 character, so each decodes whole.
 */
async function* jsonlRows(source: AsyncIterable<Buffer | string>, maxRowBytes: number): AsyncGenerator<DatasetRow> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const one = (bytes: Buffer): DatasetRow | null => {
    line++;
    if (bytes.length > maxRowBytes) throw tooLong(line, maxRowBytes);
    const text = bytes.toString('utf8');
    if (/^[\s]*$/.test(text)) return null;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw lineError(line, `not valid JSON (${(e as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw lineError(line, 'a row must be a JSON object');
    return { line, values: v as Record<string, unknown> };
  };
  for await (const piece of source) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
    let from = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
      const tail = chunk.subarray(from, nl);
      const whole = pending.length ? Buffer.concat([...pending, tail], pendingBytes + tail.length) : tail;
      pending = [];
      pendingBytes = 0;
      from = nl + 1;
      const r = one(whole);
      if (r) yield r;
    }
    if (from < chunk.length) {
      pending.push(chunk.subarray(from));
      pendingBytes += chunk.length - from;
      if (pendingBytes > maxRowBytes) throw tooLong(line + 1, maxRowBytes);
    }
  }
  const r = one(Buffer.concat(pending, pendingBytes));
  if (r) yield r;
}

async function* csvRows(source: AsyncIterable<Buffer | string>, maxRowBytes: number): AsyncGenerator<DatasetRow> {
  // max_record_size counts characters, at most as many as bytes: the bound holds.
  const parser = csvParse({ relax_column_count: true, skip_empty_lines: true, info: true, bom: true, max_record_size: maxRowBytes });
  Readable.from(source)
    .on('error', (e) => parser.destroy(e))
    .pipe(parser);
  let header: string[] | undefined;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!header) {
        header = record.map((h) => h.trim());
        const seen = new Set<string>();
        header.forEach((h, i) => {
          if (!h) throw lineError(info.lines, `header column ${i + 1} has no name`);
          if (seen.has(h)) throw lineError(info.lines, `header names column "${h}" twice`);
          seen.add(h);
        });
        continue;
      }
      if (record.length !== header.length) throw lineError(info.lines, `has ${record.length} fields, the header has ${header.length}`);
      const values: Record<string, unknown> = {};
      for (let i = 0; i < header.length; i++) {
        const v = record[i]!;
        values[header[i]!] = isMissingCell(v) ? null : v;
      }
      yield { line: info.lines, values };
    }
  } catch (e) {
    if (e instanceof CsvError && e.code === 'CSV_MAX_RECORD_SIZE') throw tooLong((e as CsvError & { lines?: number }).lines ?? 0, maxRowBytes);
    if (e instanceof CsvError) throw badRequest(`line ${(e as CsvError & { lines?: number }).lines ?? '?'}: ${e.message}`);
    throw e;
  }
}

/** An empty CSV cell, or one that says NaN (as pandas writes a missing number), is a missing value. */
export const isMissingCell = (v: string) => {
  const t = v.trim();
  return t === '' || (t.length === 3 && t.toLowerCase() === 'nan');
};

/** A value as a finite number, or null when it is not one (CSV strings are parsed, JSON strings are not). */
export function numericValue(v: unknown, format: DatasetFormat): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (format === 'csv' && typeof v === 'string') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

interface Acc {
  seen: number;
  numeric: boolean;
  integer: boolean;
  distinct: Set<string>;
  /** Length histograms (length -> values) of string values, kept until the column turns out numeric. */
  chars: Map<number, number>;
  tokens: Map<number, number>;
  /** Every value so far, while all are different and short; null once one repeats or is long (or past UNIQUE_CAP). */
  unique: Set<string> | null;
}

const bump = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);

/** Min, mean, median, 95th percentile (nearest rank) and max of a length histogram. */
export function lengthStats(h: Map<number, number>): LengthStats {
  const keys = [...h.keys()].sort((a, b) => a - b);
  let n = 0;
  let sum = 0;
  for (const k of keys) {
    n += h.get(k)!;
    sum += k * h.get(k)!;
  }
  const rank = (q: number) => {
    const want = Math.max(1, Math.ceil(q * n));
    let c = 0;
    for (const k of keys) if ((c += h.get(k)!) >= want) return k;
    return keys[keys.length - 1] ?? 0;
  };
  return { min: keys[0] ?? 0, mean: n ? Math.round((sum / n) * 100) / 100 : 0, p50: rank(0.5), p95: rank(0.95), max: keys[keys.length - 1] ?? 0 };
}

/** A string column is text when its values are long (TEXT_MIN_MEAN_TOKENS) or nearly all different, else a category. */
function stringType(a: Acc): 'category' | 'text' {
  const meanTokens = lengthStats(a.tokens).mean;
  if (meanTokens >= TEXT_MIN_MEAN_TOKENS) return 'text';
  if (a.distinct.size > DISTINCT_CAP) return 'text';
  return a.distinct.size <= Math.max(20, a.seen / 2) ? 'category' : 'text';
}

export interface Profile {
  rows: number;
  columns: Column[];
  stats: ColumnStats[];
}

/** Reads the whole file once: row count, column types (number, integer, category, text), missing and distinct counts, text lengths. */
export async function profileDataset(source: AsyncIterable<Buffer | string>, format: DatasetFormat, opts: RowReadOptions = {}): Promise<Profile> {
  const acc = new Map<string, Acc>();
  let rows = 0;
  for await (const row of datasetRows(source, format, opts)) {
    rows++;
    for (const [name, v] of Object.entries(row.values)) {
      let a = acc.get(name);
      if (!a) acc.set(name, (a = { seen: 0, numeric: true, integer: true, distinct: new Set(), chars: new Map(), tokens: new Map(), unique: new Set() }));
      if (v === null || v === undefined) continue;
      if (typeof v === 'object') throw lineError(row.line, `"${name}" holds ${Array.isArray(v) ? 'an array' : 'an object'}; dataset rows are flat`);
      a.seen++;
      if (a.numeric) {
        const n = numericValue(v, format);
        if (n === null) a.numeric = a.integer = false;
        else if (!Number.isInteger(n)) a.integer = false;
      }
      if (a.distinct.size <= DISTINCT_CAP) a.distinct.add(String(v));
      if (a.unique) {
        const str = String(v);
        if (str.length > UNIQUE_MAX_CHARS || a.unique.has(str) || a.unique.size >= UNIQUE_CAP) a.unique = null;
        else a.unique.add(str);
      }
      if (!a.numeric) {
        const str = String(v);
        bump(a.chars, str.length < 64 && !/[\ud800-\udfff]/.test(str) ? str.length : [...str].length);
        bump(a.tokens, textTokens(str).length);
      }
    }
  }
  const columns: Column[] = [];
  const stats: ColumnStats[] = [];
  for (const [name, a] of acc) {
    // A column with no values at all cannot be a feature or a target: call it a category.
    const type: ColumnType = a.seen === 0 ? 'category' : !a.numeric ? stringType(a) : a.integer ? 'integer' : 'number';
    columns.push({ name, type });
    const s: ColumnStats = { name, missing: rows - a.seen, distinct: a.distinct.size };
    if (type === 'text') s.length = { chars: lengthStats(a.chars), tokens: lengthStats(a.tokens) };
    if (!a.numeric && a.seen > 0) s.unique = a.unique !== null;
    stats.push(s);
  }
  return { rows, columns, stats };
}

/** Dataset records in Redis, under the registry's `records:` namespace (never a BullMQ queue's keys). */
export class DatasetStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string) {
    return `${this.prefix}:records:dataset:${id}`;
  }
  private get listKey() {
    return `${this.prefix}:records:datasets`;
  }

  private tenantList(tenant: string) {
    return `${this.prefix}:records:datasets:tenant:${tenant}`;
  }

  async create(r: DatasetRecord): Promise<void> {
    await this.redis
      .multi()
      .set(this.key(r.id), JSON.stringify(r))
      .zadd(this.listKey, Date.parse(r.createdAt), r.id)
      .zadd(this.tenantList(r.tenant ?? 'default'), Date.parse(r.createdAt), r.id)
      .exec();
  }

  /** The dataset when it belongs to `tenant`; another tenant's is not found. */
  async getFor(id: string, tenant: string): Promise<DatasetRecord | null> {
    const r = await this.get(id);
    return r && (r.tenant ?? 'default') === tenant ? r : null;
  }

  async get(id: string): Promise<DatasetRecord | null> {
    if (!DATASET_ID_RE.test(id)) return null;
    const json = await this.redis.get(this.key(id));
    return json ? datasetRecordSchema.parse(JSON.parse(json)) : null;
  }

  /** A tenant's datasets, newest first. */
  async list(tenant: string, offset: number, limit: number): Promise<{ data: DatasetRecord[]; total: number }> {
    const key = this.tenantList(tenant);
    const [ids, total] = await Promise.all([this.redis.zrevrange(key, offset, offset + limit - 1), this.redis.zcard(key)]);
    const data = (await Promise.all(ids.map((id) => this.get(id)))).filter((r): r is DatasetRecord => r !== null);
    return { data, total };
  }
}

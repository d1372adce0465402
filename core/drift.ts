// Input drift per model version: a reference profile of its inputs (per feature: quantile bins with
// their expected shares, or category shares), windows of online traffic counted into those bins in
// Redis (bounded: a count per bin, never rows), and the comparison: PSI for numeric features and
// Jensen-Shannon distance for categorical ones.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LUA, runLua } from './lua/scripts.ts';
import { z } from 'zod';
import { badRequest } from './errors.ts';
import type { TensorSpec } from './tensors.ts';
import { metadataList, type VersionRecord } from './registry.ts';
import { textWords } from './text-tokens.ts';
import type { ArtifactStore } from './storage/index.ts';

/** Quantile bins per numeric feature, and categories kept per categorical one (the rest count as "other"). */
export const NUMERIC_BINS = 10;
export const MAX_CATEGORIES = 20;
/** Words kept per text feature (the rest count as "other"). */
export const MAX_TEXT_TOKENS = 100;
/** A string feature whose values hold at least this many words on average is text (word frequencies), else categorical. */
export const TEXT_MIN_WORDS = 2;
/** Share given to an empty bin, so PSI stays finite (a common choice; changes the figure only for near-empty bins). */
const EPS = 1e-4;

export const featureProfileSchema = z.discriminatedUnion('kind', [
  z.object({
    name: z.string(),
    input: z.string(),
    column: z.number().int(),
    kind: z.literal('numeric'),
    /** Inner cut points, ascending: bin i holds edges[i-1] <= v < edges[i]. */
    edges: z.array(z.number()),
    expected: z.array(z.number()),
  }),
  z.object({
    name: z.string(),
    input: z.string(),
    column: z.number().int(),
    kind: z.literal('categorical'),
    /** Expected shares of `categories`, then of every other value. */
    categories: z.array(z.string()),
    expected: z.array(z.number()),
  }),
  z.object({
    name: z.string(),
    input: z.string(),
    column: z.number().int(),
    kind: z.literal('text'),
    /** Expected shares of word occurrences: of `tokens` (the most frequent words, lower-cased), then of every other word. */
    tokens: z.array(z.string()),
    expected: z.array(z.number()),
  }),
]);
export type FeatureProfile = z.infer<typeof featureProfileSchema>;
export const driftProfileSchema = z.object({ rows: z.number().int(), features: z.array(featureProfileSchema) });
export type DriftProfile = z.infer<typeof driftProfileSchema>;

/** A bounded cache of reference profiles read from the store, by key (oldest dropped first; a failed read is not kept). */
export function profileCache(store: ArtifactStore, max: number): (key: string) => Promise<DriftProfile> {
  const profiles = new Map<string, Promise<DriftProfile>>();
  return (key) => {
    let p = profiles.get(key);
    if (!p) {
      p = store.get(key).then((b) => driftProfileSchema.parse(JSON.parse(b.toString('utf8'))));
      profiles.set(key, p);
      p.catch(() => profiles.delete(key));
      if (profiles.size > max) profiles.delete(profiles.keys().next().value!);
    }
    return p;
  };
}

export const referenceKey = (sha256: string) => `drift/reference/${sha256}.json`;
export const trainReferenceKey = (jobId: string) => `jobs/train/${jobId}/reference.json`;

/** One feature's place in a request: input name and column, and whether it is numeric or categorical. */
export interface Slot {
  name: string;
  input: string;
  column: number;
  categorical: boolean;
  /** For categorical slots: profile as text (true) or as categories (false); unset, by the values' word count. */
  text?: boolean;
}

/**
 * The features drift is watched on: every column of each [N, K] input (K fixed) and each [N] or
 * [N, 1] input; BYTES inputs are categorical. `names` names them in that order (default: the input
 * name for one-column inputs, `input[j]` otherwise). Other inputs (images, sequences) are not profiled.
 */
export function modelSlots(inputs: TensorSpec[], names?: string[]): Slot[] {
  const slots: Slot[] = [];
  for (const i of inputs) {
    const width = i.shape.length === 1 ? 1 : i.shape.length === 2 && i.shape[1]! > 0 ? i.shape[1]! : 0;
    for (let j = 0; j < width; j++)
      slots.push({ name: width === 1 ? i.name : `${i.name}[${j}]`, input: i.name, column: j, categorical: i.datatype === 'BYTES' });
  }
  if (!slots.length) throw badRequest('drift needs inputs shaped [rows] or [rows, features] with a fixed feature count');
  if (names) {
    if (names.length !== slots.length) throw badRequest(`columns: ${names.length} names given, the model's inputs have ${slots.length} features`);
    names.forEach((n, k) => {
      slots[k]!.name = n;
    });
  }
  return slots;
}

/** A profile from reference values per slot (numbers, or strings for categorical slots). */
export function buildProfile(slots: Slot[], values: (number | string)[][]): DriftProfile {
  const rows = values[0]?.length ?? 0;
  return {
    rows,
    features: slots.map((s, k) => {
      const v = values[k]!;
      if (s.categorical && (s.text ?? isText(v.map(String)))) {
        const words = v.map((x) => textWords(String(x)));
        const freq = new Map<string, number>();
        for (const ws of words) for (const w of ws) freq.set(w, (freq.get(w) ?? 0) + 1);
        const tokens = [...freq.entries()]
          .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
          .slice(0, MAX_TEXT_TOKENS)
          .map(([w]) => w);
        const index = new Map(tokens.map((t, i) => [t, i]));
        const counts = new Array<number>(tokens.length + 1).fill(0);
        for (const ws of words) for (const w of ws) counts[index.get(w) ?? tokens.length]!++;
        return { name: s.name, input: s.input, column: s.column, kind: 'text' as const, tokens, expected: shares(counts) };
      }
      if (s.categorical) {
        const freq = new Map<string, number>();
        for (const x of v) freq.set(String(x), (freq.get(String(x)) ?? 0) + 1);
        const categories = [...freq.entries()]
          .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
          .slice(0, MAX_CATEGORIES)
          .map(([c]) => c);
        const counts = countCategories(categories, v.map(String));
        return { name: s.name, input: s.input, column: s.column, kind: 'categorical' as const, categories, expected: shares(counts) };
      }
      // Bin edges from the values present: a missing number (NaN) falls in the first bin, as binOf puts it when served.
      const sorted = Float64Array.from((v as number[]).filter((x) => !Number.isNaN(x))).sort();
      const edges: number[] = [];
      for (let q = 1; q < NUMERIC_BINS; q++) {
        const e = sorted[Math.min(sorted.length - 1, Math.floor((q * sorted.length) / NUMERIC_BINS))];
        if (e !== undefined && (!edges.length || e > edges[edges.length - 1]!)) edges.push(e);
      }
      const counts = new Array<number>(edges.length + 1).fill(0);
      for (const x of v as number[]) counts[binOf(edges, x)]!++;
      return { name: s.name, input: s.input, column: s.column, kind: 'numeric' as const, edges, expected: shares(counts) };
    }),
  };
}

/** Values that hold TEXT_MIN_WORDS words or more on average. */
function isText(v: string[]): boolean {
  if (!v.length) return false;
  let words = 0;
  for (const x of v) words += textWords(x).length;
  return words / v.length >= TEXT_MIN_WORDS;
}

const shares = (counts: number[]) => {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.map((c) => (n ? c / n : 0));
};

function countCategories(categories: string[], v: string[]): number[] {
  const index = new Map(categories.map((c, i) => [c, i]));
  const counts = new Array<number>(categories.length + 1).fill(0);
  for (const x of v) counts[index.get(x) ?? categories.length]!++;
  return counts;
}

/** Bin of `x` among ascending cut points (binary search). */
export function binOf(edges: number[], x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (x >= edges[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The bin (or category index, `categories.length` for others) of one value of feature `f`. */
export function binValue(f: FeatureProfile, x: unknown): number {
  if (f.kind === 'numeric') return binOf(f.edges, Number(x));
  if (f.kind === 'text') return binsOf(f, x)[0] ?? f.tokens.length;
  const i = f.categories.indexOf(String(x));
  return i < 0 ? f.categories.length : i;
}

/** Population stability index: sum over bins of (actual - expected) ln(actual / expected). */
export function psi(expected: number[], actual: number[]): number {
  let s = 0;
  expected.forEach((e0, i) => {
    const e = Math.max(e0, EPS);
    const a = Math.max(actual[i] ?? 0, EPS);
    s += (a - e) * Math.log(a / e);
  });
  return s;
}

/** Jensen-Shannon distance (square root of the divergence, base 2): 0 same, 1 disjoint. */
export function jsDistance(p: number[], q: number[]): number {
  let d = 0;
  p.forEach((pi, i) => {
    const qi = q[i] ?? 0;
    const m = (pi + qi) / 2;
    if (pi > 0) d += 0.5 * pi * Math.log2(pi / m);
    if (qi > 0) d += 0.5 * qi * Math.log2(qi / m);
  });
  return Math.sqrt(Math.max(0, d));
}

export type DriftLevel = 'ok' | 'warn' | 'alert' | 'no_data';
export interface Thresholds {
  warn: number;
  alert: number;
}
export const levelOf = (score: number, t: Thresholds): DriftLevel => (score >= t.alert ? 'alert' : score >= t.warn ? 'warn' : 'ok');

export interface FeatureDrift {
  name: string;
  kind: 'numeric' | 'categorical' | 'text';
  metric: 'psi' | 'js';
  score: number | null;
  level: DriftLevel;
}
export interface DriftReport {
  rows: number;
  level: DriftLevel;
  thresholds: Thresholds;
  features: FeatureDrift[];
}

/** Compares a window's counts (field `k:bin` per feature k) with the profile. */
export function driftReport(profile: DriftProfile, counts: Map<string, number>, rows: number, t: Thresholds): DriftReport {
  const order: DriftLevel[] = ['no_data', 'ok', 'warn', 'alert'];
  let worst: DriftLevel = rows ? 'ok' : 'no_data';
  const features = profile.features.map((f, k): FeatureDrift => {
    const metric = f.kind === 'numeric' ? ('psi' as const) : ('js' as const);
    if (!rows) return { name: f.name, kind: f.kind, metric, score: null, level: 'no_data' };
    const actual = shares(f.expected.map((_, b) => counts.get(`${k}:${b}`) ?? 0));
    const score = f.kind === 'numeric' ? psi(f.expected, actual) : jsDistance(f.expected, actual);
    const level = levelOf(score, t);
    if (order.indexOf(level) > order.indexOf(worst)) worst = level;
    return { name: f.name, kind: f.kind, metric, score, level };
  });
  return { rows, level: worst, thresholds: t, features };
}

// Windows of two generations: core/lua/drift-add-counts.lua.
/** Drift windows in Redis, under the registry's `records:` space. */
export class DriftWindows {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly window: number,
  ) {}

  private k(name: string, version: number, gen: 'cur' | 'prev') {
    return `${this.prefix}:records:drift:${name}:${version}:${gen}`;
  }
  get versionsKey() {
    return `${this.prefix}:records:drift:versions`;
  }

  /** Adds `rows` rows whose bins were counted into `counts` ("k:bin" -> n). */
  async add(name: string, version: number, rows: number, counts: Map<string, number>): Promise<void> {
    const args: (string | number)[] = [Math.max(1, Math.floor(this.window / 2)), rows, `${name}@${version}`];
    for (const [field, n] of counts) args.push(field, n);
    await runLua(this.redis, LUA.driftAddCounts, [this.k(name, version, 'cur'), this.k(name, version, 'prev'), this.versionsKey], args);
  }

  /** Counts of both generations and their rows. */
  async read(name: string, version: number): Promise<{ rows: number; counts: Map<string, number> }> {
    const [cur, prev] = await Promise.all([this.redis.hgetall(this.k(name, version, 'cur')), this.redis.hgetall(this.k(name, version, 'prev'))]);
    const counts = new Map<string, number>();
    let rows = 0;
    for (const h of [cur, prev]) {
      for (const [f, v] of Object.entries(h)) {
        if (f === 'n') rows += Number(v);
        else counts.set(f, (counts.get(f) ?? 0) + Number(v));
      }
    }
    return { rows, counts };
  }

  /** Versions that have a window (for /metrics). */
  versions(): Promise<string[]> {
    return this.redis.smembers(this.versionsKey);
  }
}

/** A version's drift report, or null when it has no reference profile. */
export async function versionDrift(
  store: ArtifactStore,
  windows: DriftWindows,
  v: VersionRecord,
  t: Thresholds,
): Promise<(DriftReport & { referenceRows: number }) | null> {
  const ref = v.explain?.reference;
  if (!ref) return null;
  const [text, window] = await Promise.all([store.get(ref.key), windows.read(v.name, v.version)]);
  const profile = driftProfileSchema.parse(JSON.parse(text.toString('utf8')));
  return { ...driftReport(profile, window.counts, window.rows, t), referenceRows: profile.rows };
}

/** A tensor's rows as drift reads them (a request's input, or rows sampled from a batch). */
export interface RowsOf {
  name: string;
  shape: number[];
  data: ArrayLike<unknown>;
}

/** The values of feature (input, column) in rows [0, n) of the tensors; undefined when the input is missing. */
function columnOf(inputs: RowsOf[], input: string, column: number): { n: number; at: (r: number) => unknown } | undefined {
  const t = inputs.find((i) => i.name === input);
  if (!t) return undefined;
  const n = t.shape[0] ?? 1;
  const width = t.shape.length > 1 ? t.shape.slice(1).reduce((a, b) => a * b, 1) : 1;
  return { n, at: (r) => t.data[r * width + column] };
}

/** Counts the rows' bins into `counts` ("k:bin" -> n); returns the rows counted. */
export function countRows(p: DriftProfile, inputs: RowsOf[], counts: Map<string, number>): number {
  let rows = 0;
  p.features.forEach((f, k) => {
    const col = columnOf(inputs, f.input, f.column);
    if (!col) return;
    rows = Math.max(rows, col.n);
    for (let r = 0; r < col.n; r++) {
      for (const b of binsOf(f, col.at(r))) {
        const field = `${k}:${b}`;
        counts.set(field, (counts.get(field) ?? 0) + 1);
      }
    }
  });
  return rows;
}

/** The bins one value adds to: one bin, or for text a bin per token occurrence. */
export function binsOf(f: FeatureProfile, x: unknown): number[] {
  if (f.kind !== 'text') return [binValue(f, x)];
  let index = tokenIndex.get(f);
  if (!index) tokenIndex.set(f, (index = new Map(f.tokens.map((t, i) => [t, i]))));
  return textWords(String(x)).map((w) => index.get(w) ?? f.tokens.length);
}
const tokenIndex = new WeakMap<FeatureProfile, Map<string, number>>();

/** Rows as one value per slot (for a reference built from served rows), at most `limit`. */
export function featureRows(slots: Slot[], inputs: RowsOf[], limit: number): (number | string)[][] {
  const cols = slots.map((s) => columnOf(inputs, s.input, s.column));
  if (cols.some((c) => !c)) return [];
  const n = Math.min(limit, ...cols.map((c) => c!.n));
  const out: (number | string)[][] = [];
  for (let r = 0; r < n; r++) {
    out.push(
      slots.map((s, k) => {
        const v = cols[k]!.at(r);
        return s.categorical ? String(v) : typeof v === 'bigint' ? Number(v) : Number(v);
      }),
    );
  }
  return out;
}

// Reference rows, the first N: core/lua/drift-add-reference-rows.lua.

/**
 * A reference from served rows, for versions that have none (uploaded ones): the first N rows
 * scored (online or in batches) gather in a Redis list (bounded: N rows, a day's expiry); the first
 * process that sees N builds the profile, stores it and records it on the version, as
 * PUT .../reference does. Versions whose inputs cannot be profiled are skipped.
 */
export class ReferenceCollector {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly store: ArtifactStore,
    private readonly registry: {
      getVersion(name: string, version: number): Promise<VersionRecord>;
      setExplainArtifact(name: string, version: number, field: 'reference', ref: { key: string; rows: number; features: number }): Promise<unknown>;
    },
    /** N: rows the reference is built from (0: never). */
    readonly rows: number,
  ) {}

  private k(v: { name: string; version: number }, what: 'rows' | 'lock') {
    return `${this.prefix}:records:drift:${v.name}:${v.version}:reference-${what}`;
  }

  /** The version's profiled features, or null when it has a reference already or none can be made. */
  slotsFor(v: VersionRecord): Slot[] | null {
    if (this.rows <= 0 || v.explain?.reference) return null;
    try {
      const named = metadataList<string>(v, 'features');
      return modelSlots(v.inputs, named && named.length ? named : undefined);
    } catch {
      return null;
    }
  }

  /** Adds rows (one value per slot); builds the reference once N are there. Returns the rows held. */
  async add(v: VersionRecord, slots: Slot[], rows: (number | string)[][]): Promise<number> {
    if (!rows.length) return 0;
    const n = Number(await runLua(this.redis, LUA.driftAddReferenceRows, [this.k(v, 'rows')], [this.rows, ...rows.map((r) => JSON.stringify(r))]));
    if (n >= this.rows) await this.build(v, slots);
    return n;
  }

  private async build(v: VersionRecord, slots: Slot[]): Promise<void> {
    // One builder per version; the lock expires should it die midway.
    if ((await this.redis.set(this.k(v, 'lock'), '1', 'PX', 60_000, 'NX')) !== 'OK') return;
    const fresh = await this.registry.getVersion(v.name, v.version);
    if (fresh.explain?.reference) return; // set meanwhile (PUT .../reference)
    const rows = (await this.redis.lrange(this.k(v, 'rows'), 0, this.rows - 1)).map((s) => JSON.parse(s) as (number | string)[]);
    const values = slots.map((_, k) => rows.map((r) => r[k]!));
    const text = JSON.stringify(buildProfile(slots, values));
    const key = referenceKey(createHash('sha256').update(text).digest('hex'));
    await this.store.put(key, text);
    await this.registry.setExplainArtifact(v.name, v.version, 'reference', { key, rows: rows.length, features: slots.length });
    await this.redis.del(this.k(v, 'rows'));
  }
}

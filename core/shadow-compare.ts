// Comparing a shadow version's answer with the primary's: top-1 agreement per row (the arg max of
// each row of the first output both have; equal values for one-value-per-row outputs such as labels)
// and agreement within a tolerance over every value of every output both have. Comparison counters
// live in Redis per (primary, shadow) pair, like the per-version figures.
import type { Redis } from 'ioredis';
import { toProtocolTensor, type WireTensor } from './jobs/infer.ts';
import { bucketOf } from './version-figures.ts';
import { jsDistance } from './drift/stats.ts';

/** Distinct top-1 classes counted per version (or pair side) by one process; the rest count as OTHER_CLASS. */
export const MAX_OUTPUT_CLASSES = 64;
export const OTHER_CLASS = '(other)';

/** Answers whose first output has more values than this are not counted (no class to read in an embedding or an image; bounded work per answer). */
export const MAX_CLASS_VALUES = 65536;

/** The top-1 class of each row of the first output: the arg max of several values per row, else the row's one value (a label). */
export function topClassesOf(outputs: readonly WireTensor[]): string[] {
  const t = outputs[0];
  if (!t || t.shape.reduce((a, b) => a * Math.max(0, b), 1) > MAX_CLASS_VALUES) return [];
  const v = values(t);
  const rows = t.shape.length ? (t.shape[0] ?? 1) : 1;
  const per = rows > 0 ? v.length / rows : 0;
  if (per > 1 && typeof v[0] === 'number') return argmaxRows(v, rows).map(String);
  const out: string[] = [];
  for (let r = 0; r < rows; r++) out.push(String(v[r * per] as string | number));
  return out;
}

/** Keeps at most MAX_OUTPUT_CLASSES distinct classes in `seen`; a new one past that is OTHER_CLASS. */
export function boundedClass(seen: Set<string>, c: string): string {
  if (seen.has(c)) return c;
  if (seen.size >= MAX_OUTPUT_CLASSES) return OTHER_CLASS;
  seen.add(c);
  return c;
}

/**
 * Output drift of `actual` from `expected` (class -> rows): the Jensen-Shannon distance of their
 * top-1 class shares (0 the same, 1 disjoint), as categorical input drift is measured; null when either has no rows.
 */
export function outputDrift(expected: Record<string, number>, actual: Record<string, number>): number | null {
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])];
  const te = keys.reduce((n, k) => n + (expected[k] ?? 0), 0);
  const ta = keys.reduce((n, k) => n + (actual[k] ?? 0), 0);
  if (!te || !ta) return null;
  return jsDistance(
    keys.map((k) => (expected[k] ?? 0) / te),
    keys.map((k) => (actual[k] ?? 0) / ta),
  );
}

/** Relative tolerance (absolute below 1) of "within tolerance". */
export const SHADOW_TOLERANCE = 1e-3;

const values = (t: WireTensor): unknown[] => Array.from(toProtocolTensor(t).data as ArrayLike<unknown>);

function argmaxRows(v: unknown[], rows: number): number[] {
  const width = rows > 0 ? v.length / rows : 0;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < width; j++) if (Number(v[r * width + j]) > Number(v[r * width + best])) best = j;
    out.push(best);
  }
  return out;
}

export interface Verdict {
  top1: boolean;
  withinTolerance: boolean;
}

export function compareOutputs(primary: WireTensor[], shadow: WireTensor[], tol = SHADOW_TOLERANCE): Verdict {
  const byName = new Map(shadow.map((t) => [t.name, t]));
  const pairs = primary.filter((t) => byName.has(t.name)).map((t) => [t, byName.get(t.name)!] as const);
  if (!pairs.length) return { top1: false, withinTolerance: false };
  let withinTolerance = true;
  let top1 = true;
  pairs.forEach(([a, b], i) => {
    if (a.shape.join(',') !== b.shape.join(',')) {
      withinTolerance = false;
      if (i === 0) top1 = false;
      return;
    }
    const va = values(a);
    const vb = values(b);
    const numeric = typeof va[0] === 'number';
    for (let k = 0; k < va.length && withinTolerance; k++) {
      if (numeric ? Math.abs(Number(va[k]) - Number(vb[k])) > tol * Math.max(1, Math.abs(Number(va[k]))) : va[k] !== vb[k]) withinTolerance = false;
    }
    if (i !== 0) return;
    const rows = a.shape[0] ?? 1;
    const perRow = rows > 0 ? va.length / rows : 0;
    if (numeric && perRow > 1) {
      const ra = argmaxRows(va, rows);
      const rb = argmaxRows(vb, rows);
      top1 = ra.every((x, r) => x === rb[r]);
    } else top1 = va.every((x, k) => (numeric ? Math.abs(Number(x) - Number(vb[k])) <= tol * Math.max(1, Math.abs(Number(x))) : x === vb[k]));
  });
  return { top1, withinTolerance };
}

export const comparisonKey = (prefix: string, name: string, primary: number, shadow: number) => `${prefix}:records:compare:${name}:${primary}:${shadow}`;

export interface ComparisonFigures {
  /** Requests mirrored and answered by both. */
  compared: number;
  agreed: number;
  withinTolerance: number;
  /** Mirrored requests the shadow failed. */
  errors: number;
  /** Mirrors dropped because the queue was full. */
  dropped: number;
  /** Latency histograms (bucket -> count) of the compared requests, primary and shadow. */
  primaryLatency: Record<number, number>;
  shadowLatency: Record<number, number>;
  /** Top-1 classes (class -> rows) of the compared requests' answers, primary's and shadow's. */
  primaryClasses: Record<string, number>;
  shadowClasses: Record<string, number>;
}

export async function readComparison(redis: Redis, prefix: string, name: string, primary: number, shadow: number): Promise<ComparisonFigures> {
  const h = await redis.hgetall(comparisonKey(prefix, name, primary, shadow));
  const hist = (p: string) =>
    Object.fromEntries(
      Object.entries(h).flatMap(([f, v]) => (f.startsWith(p) && /^\d+$/.test(f.slice(p.length)) ? [[Number(f.slice(p.length)), Number(v)]] : [])),
    );
  const classes = (p: string) => Object.fromEntries(Object.entries(h).flatMap(([f, v]) => (f.startsWith(p) ? [[f.slice(p.length), Number(v)]] : [])));
  const n = (f: string) => Number(h[f] ?? 0);
  return {
    compared: n('n'),
    agreed: n('top1'),
    withinTolerance: n('tol'),
    errors: n('err'),
    dropped: n('dropped'),
    primaryLatency: hist('p'),
    shadowLatency: hist('s'),
    primaryClasses: classes('pc:'),
    shadowClasses: classes('sc:'),
  };
}

/** Adds one flush's counts of one pair (field -> increment) to Redis. */
export function comparisonFields(v: Verdict | null, primaryMs: number, shadowMs: number): Record<string, number> {
  if (!v) return { err: 1 };
  return { n: 1, top1: v.top1 ? 1 : 0, tol: v.withinTolerance ? 1 : 0, [`p${bucketOf(primaryMs)}`]: 1, [`s${bucketOf(shadowMs)}`]: 1 };
}

/** One row's outputs as a batch's JSONL line carries them (output name -> its values). */
export type RowOutputs = Record<string, unknown[]>;

/** The top-1 of a row's values: the arg max of several numbers, else the one value (a label). */
export function rowTop1(values: readonly unknown[]): string | number {
  if (values.length > 1 && typeof values[0] === 'number') {
    let best = 0;
    for (let j = 1; j < values.length; j++) if (Number(values[j]) > Number(values[best])) best = j;
    return best;
  }
  const v = values[0];
  return typeof v === 'number' || typeof v === 'string' ? v : JSON.stringify(v ?? null);
}

/**
 * One row of a shadow batch, as the online comparison judges a request: top-1 over the first output
 * both have (its class: the arg max, named by `classes` when they name its values, or the label),
 * within tolerance over every value of every output both have.
 */
export function compareRow(
  primary: RowOutputs,
  shadow: RowOutputs,
  classes?: readonly (string | number)[],
  tol = SHADOW_TOLERANCE,
): Verdict & { primaryClass: string; shadowClass: string } {
  const names = Object.keys(primary).filter((n) => n in shadow);
  if (!names.length) return { top1: false, withinTolerance: false, primaryClass: '', shadowClass: '' };
  const first = names[0]!;
  const a = primary[first]!;
  const b = shadow[first]!;
  const cls = (v: readonly unknown[]) => {
    const t = rowTop1(v);
    return String(typeof t === 'number' && v.length > 1 && classes && classes.length === v.length ? classes[t] : t);
  };
  const primaryClass = cls(a);
  const shadowClass = cls(b);
  const close = (x: unknown, y: unknown) =>
    typeof x === 'number' && typeof y === 'number' ? Math.abs(x - y) <= tol * Math.max(1, Math.abs(x)) : JSON.stringify(x) === JSON.stringify(y);
  let withinTolerance = true;
  for (const n of names) {
    const va = primary[n]!;
    const vb = shadow[n]!;
    if (va.length !== vb.length || va.some((x, k) => !close(x, vb[k]))) {
      withinTolerance = false;
      break;
    }
  }
  const top1 =
    a.length > 1 && typeof a[0] === 'number' ? a.length === b.length && rowTop1(a) === rowTop1(b) : a.length === b.length && a.every((x, k) => close(x, b[k]));
  return { top1, withinTolerance, primaryClass, shadowClass };
}

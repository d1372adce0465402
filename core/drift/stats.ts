// Drift statistics: a profile built from reference values (quantile bins, category and word
// shares), the bins a served value falls in, and the comparison of a window's counts with the
// profile: PSI for numeric features, Jensen-Shannon distance for categorical and text ones.
import { textTokens } from '../text.ts';
import { columnOf, type RowsOf, type Slot } from './features.ts';
import { MAX_CATEGORIES, MAX_TEXT_TOKENS, NUMERIC_BINS, TEXT_MIN_WORDS, type DriftProfile, type FeatureProfile } from './schema.ts';

/** Share given to an empty bin, so PSI stays finite (a common choice; changes the figure only for near-empty bins). */
const EPS = 1e-4;

/** A profile from reference values per slot (numbers, or strings for categorical slots). */
export function buildProfile(slots: Slot[], values: (number | string)[][]): DriftProfile {
  const rows = values[0]?.length ?? 0;
  return {
    rows,
    features: slots.map((s, k) => {
      const v = values[k]!;
      if (s.categorical && (s.text ?? isText(v.map(String)))) {
        const words = v.map((x) => textTokens(x));
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
  for (const x of v) words += textTokens(x).length;
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

/**
 * Counts per feature and bin (index k of the profile's features, then the bin), added up over many
 * requests before they become Redis fields: a sampled request costs a bin search and an array
 * increment per feature, no string key.
 */
export type BinCounts = number[][];

export const newBinCounts = (p: DriftProfile): BinCounts => p.features.map((f) => new Array<number>(f.expected.length).fill(0));

/** Adds the rows' bins into `into` (newBinCounts of the same profile); returns the rows counted. */
export function addBins(p: DriftProfile, inputs: RowsOf[], into: BinCounts): number {
  let rows = 0;
  const features = p.features;
  for (let k = 0; k < features.length; k++) {
    const f = features[k]!;
    const col = columnOf(inputs, f.input, f.column);
    if (!col) continue;
    if (col.n > rows) rows = col.n;
    const acc = (into[k] ??= []);
    const { data, width, column } = col;
    for (let r = 0; r < col.n; r++) {
      const x = data[r * width + column];
      if (f.kind === 'numeric') {
        const b = binOf(f.edges, Number(x));
        acc[b] = (acc[b] ?? 0) + 1;
      } else for (const b of binsOf(f, x)) acc[b] = (acc[b] ?? 0) + 1;
    }
  }
  return rows;
}

/** Bin counts as "k:bin" -> n fields (non-zero ones), added into `counts`. */
export function binFields(into: BinCounts, counts: Map<string, number>): Map<string, number> {
  into.forEach((acc, k) =>
    acc.forEach((n, b) => {
      if (n) counts.set(`${k}:${b}`, (counts.get(`${k}:${b}`) ?? 0) + n);
    }),
  );
  return counts;
}

/** Counts the rows' bins into `counts` ("k:bin" -> n); returns the rows counted. */
export function countRows(p: DriftProfile, inputs: RowsOf[], counts: Map<string, number>): number {
  const bins = newBinCounts(p);
  const rows = addBins(p, inputs, bins);
  binFields(bins, counts);
  return rows;
}

/** The bins one value adds to: one bin, or for text a bin per token occurrence. */
export function binsOf(f: FeatureProfile, x: unknown): number[] {
  if (f.kind !== 'text') return [binValue(f, x)];
  let index = tokenIndex.get(f);
  if (!index) tokenIndex.set(f, (index = new Map(f.tokens.map((t, i) => [t, i]))));
  return textTokens(String(x)).map((w) => index.get(w) ?? f.tokens.length);
}
const tokenIndex = new WeakMap<FeatureProfile, Map<string, number>>();

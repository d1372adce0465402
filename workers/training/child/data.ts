// Loads a dataset into memory for training: feature matrix (float32, as the exported model will see
// it), targets as class indices or numbers, a seeded (stratified) train/validation split, and the
// standardization statistics of the training rows.
import { datasetRows, numericValue, type DatasetFormat } from '../../../core/datasets.ts';
import { AppError } from '../../../core/errors.ts';
import type { TrainJob } from '../../../core/jobs/train.ts';
import type { ArtifactStore } from '../../../core/storage/index.ts';

export interface Loaded {
  rows: number;
  /** Numeric features per row (all features of a purely numeric job). */
  features: number;
  /** Row-major [rows, features], raw values of the numeric features (NaN where missing; imputed once run-training has fitted it). */
  x: Float32Array;
  /** Category and text features: each column's raw values (null where missing), by column name. */
  strings?: Record<string, (string | null)[]>;
  /** Class index per row (classification) or target value (regression). */
  y: Float32Array;
  /** Classification: class values, sorted (numbers numerically), so integer classes 0..k-1 keep their index. */
  classes?: (string | number)[];
}

export async function loadDataset(store: ArtifactStore, job: TrainJob): Promise<Loaded> {
  const { features: all, target, task, featureTypes } = job.hyperparameters;
  const { format } = job.dataset;
  const features = featureTypes ? all.filter((f) => featureTypes[f] === 'numeric') : all;
  const stringCols = featureTypes ? all.filter((f) => featureTypes[f] !== 'numeric') : [];
  const F = features.length;
  const { x, targets: raw, strings } = await readFeatureRows(store, job.dataset, features, target, stringCols, { missingAsNaN: true });
  const rows = raw.length;
  const y = new Float32Array(rows);
  if (task === 'regression') {
    raw.forEach((t, i) => {
      const n = numericValue(t, format);
      if (n === null) throw new AppError('bad_request', `dataset row ${i + 1}: target "${target}" is not a number`);
      y[i] = n;
    });
    return { rows, features: F, x, y, ...(stringCols.length ? { strings } : {}) };
  }
  // Numeric classes when every value is an integer (as the dataset profile typed the column), else strings.
  const nums = raw.map((t) => numericValue(t, format));
  const numeric = nums.every((n) => n !== null && Number.isInteger(n));
  const keys = numeric ? (nums as number[]) : raw.map((t) => String(t));
  const classes = [...new Set<string | number>(keys)].sort((a, b) => (typeof a === 'number' && typeof b === 'number' ? a - b : a < b ? -1 : a > b ? 1 : 0));
  const index = new Map(classes.map((c, i) => [c, i]));
  keys.forEach((k, i) => {
    y[i] = index.get(k)!;
  });
  return { rows, features: F, x, y, classes, ...(stringCols.length ? { strings } : {}) };
}

/**
 * Every row's feature values (row-major, float32 as a model sees them), its string columns' values and,
 * when asked, its raw target value. A missing number (empty cell, null, absent key) is an error, or
 * NaN with `missingAsNaN` (how a column-input model takes it).
 */
export async function readFeatureRows(
  store: ArtifactStore,
  src: { key: string; format: DatasetFormat },
  features: string[],
  target?: string,
  stringColumns: string[] = [],
  opts: { missingAsNaN?: boolean } = {},
): Promise<{ rows: number; x: Float32Array; targets: unknown[]; strings: Record<string, (string | null)[]> }> {
  const xs: number[] = [];
  const targets: unknown[] = [];
  const strings: Record<string, (string | null)[]> = Object.fromEntries(stringColumns.map((c) => [c, []]));
  let rows = 0;
  for await (const row of datasetRows(await store.read(src.key), src.format)) {
    rows++;
    for (const c of stringColumns) {
      const v = row.values[c];
      strings[c]!.push(v === null || v === undefined ? null : String(v));
    }
    for (const f of features) {
      const v = row.values[f];
      if (opts.missingAsNaN && (v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v)))) {
        xs.push(NaN);
        continue;
      }
      const n = numericValue(v, src.format);
      if (n === null) throw new AppError('bad_request', `dataset line ${row.line}: feature "${f}" is not a number`);
      xs.push(n);
    }
    if (target !== undefined) {
      const t = row.values[target];
      if (t === null || t === undefined) throw new AppError('bad_request', `dataset line ${row.line}: target "${target}" is missing`);
      targets.push(t);
    }
  }
  return { rows, x: Float32Array.from(xs), targets, strings };
}

/** mulberry32 with its state exposed, so a checkpoint can carry it and a resume draws the same numbers. */
export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** In-place Fisher-Yates. */
  shuffle(a: Int32Array): Int32Array {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

/** Seeded split; per class when `classes` is given, so small classes appear in both parts. */
export function splitRows(d: Loaded, fraction: number, seed: number): { train: Int32Array; val: Int32Array } {
  const rng = new Rng(seed ^ 0x5eed5eed);
  const perm = rng.shuffle(Int32Array.from({ length: d.rows }, (_, i) => i));
  const wantVal = Math.max(1, Math.round(d.rows * fraction));
  const isVal = new Uint8Array(d.rows);
  if (d.classes) {
    const byClass = d.classes.map(() => [] as number[]);
    for (const i of perm) byClass[d.y[i]!]!.push(i);
    let taken = 0;
    for (const members of byClass) {
      const k = Math.min(members.length - 1, Math.round(members.length * fraction));
      for (let j = 0; j < k; j++) isVal[members[j]!] = 1;
      taken += Math.max(0, k);
    }
    // Rounding per class can leave the split short of one row: top it up in permutation order.
    for (let j = 0; j < perm.length && taken < wantVal; j++)
      if (!isVal[perm[j]!]) {
        isVal[perm[j]!] = 1;
        taken++;
      }
  } else {
    for (let j = 0; j < wantVal; j++) isVal[perm[j]!] = 1;
  }
  const train: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < d.rows; i++) (isVal[i] ? val : train).push(i);
  return { train: Int32Array.from(train), val: Int32Array.from(val) };
}

/** Mean and population standard deviation (as scikit-learn's StandardScaler) of the given rows; constant columns scale by 1. */
export function standardization(d: Loaded, rows: Int32Array): { mean: Float32Array; scale: Float32Array } {
  const F = d.features;
  const sum = new Float64Array(F);
  const sq = new Float64Array(F);
  for (const r of rows) for (let f = 0; f < F; f++) sum[f]! += d.x[r * F + f]!;
  const mean = sum.map((s) => s / rows.length);
  for (const r of rows) for (let f = 0; f < F; f++) sq[f]! += (d.x[r * F + f]! - mean[f]!) ** 2;
  const scale = sq.map((s) => Math.sqrt(s / rows.length)).map((s) => (s > 1e-12 ? s : 1));
  return { mean: Float32Array.from(mean), scale: Float32Array.from(scale) };
}

/** The given rows' features, row-major. */
export const gatherRows = (d: Loaded, rows: Int32Array): Float32Array => takeRows(d.x, d.features, rows);

/** The given rows of a row-major matrix `width` values wide, in the order given. */
export function takeRows(x: Float32Array, width: number, rows: Int32Array): Float32Array {
  const out = new Float32Array(rows.length * width);
  rows.forEach((r, i) => out.set(x.subarray(r * width, (r + 1) * width), i * width));
  return out;
}

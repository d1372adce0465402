// Whether a compressed candidate may replace its parent. Both models' outputs on the measuring data
// are compared output by output (cosine, largest difference, top-1 agreement over rows). A comparison
// that proves nothing (no output compared, a parent output constant on the data) is an error; a
// candidate output that is constant where the parent's varies, or holds NaN or Inf, fails whatever
// the tolerance; otherwise the method's tolerance accepts or refuses. Nothing counts as perfect agreement by default.
import { AppError } from '../../core/errors.ts';
import type { CompressMethod, OutputFigures, Tolerance } from '../../core/jobs/compress.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { argmaxRows } from './dataset.ts';

/** Default tolerance per method; a request's `tolerance` replaces the fields it names. */
export const DEFAULT_TOLERANCE: Record<CompressMethod, Tolerance> = {
  fp16: { cosine: 0.999, top1: 0.99 },
  // With a labelled dataset accuracyDrop decides for classifiers instead of top1.
  'quantize-int8': { cosine: 0.99, top1: 0.97, accuracyDrop: 0.01 },
  'quantize-int8-static': { cosine: 0.99, top1: 0.97, accuracyDrop: 0.01 },
  prune: {},
  distill: {},
};

interface Acc {
  values: number;
  dot: number;
  na: number;
  nb: number;
  maxAbsDiff: number;
  nonFinite: number;
  parent: [number, number];
  candidate: [number, number];
  agree: number;
  rows: number;
  float: boolean;
}

const fresh = (float: boolean): Acc => ({
  values: 0,
  dot: 0,
  na: 0,
  nb: 0,
  maxAbsDiff: 0,
  nonFinite: 0,
  parent: [Infinity, -Infinity],
  candidate: [Infinity, -Infinity],
  agree: 0,
  rows: 0,
  float,
});

/** One value per row that is not a float score (an int64 or string label): compared for equality. */
const isLabel = (t: RawTensor) => !(t.data instanceof Float32Array) && (t.dims.length === 1 || (t.dims.length === 2 && t.dims[1] === 1));

const lengthOf = (t: RawTensor) => (t.data as unknown as ArrayLike<unknown>).length;

/** Parent and candidate outputs accumulated over any number of runs. */
export class OutputComparison {
  private readonly acc = new Map<string, Acc>();

  add(parent: Record<string, RawTensor>, candidate: Record<string, RawTensor>): void {
    for (const [name, a] of Object.entries(parent)) {
      const b = candidate[name];
      if (!b || lengthOf(a) !== lengthOf(b)) continue;
      if (a.data instanceof Float32Array && b.data instanceof Float32Array) this.addFloat(name, a, b);
      else if (isLabel(a) && isLabel(b)) this.addLabels(name, a, b);
    }
  }

  private addFloat(name: string, a: RawTensor, b: RawTensor) {
    const acc = this.acc.get(name) ?? fresh(true);
    const [da, db] = [a.data as Float32Array, b.data as Float32Array];
    for (let i = 0; i < da.length; i++) {
      const x = da[i]!;
      const y = db[i]!;
      if (!Number.isFinite(y)) {
        acc.nonFinite++;
        continue;
      }
      acc.dot += x * y;
      acc.na += x * x;
      acc.nb += y * y;
      acc.maxAbsDiff = Math.max(acc.maxAbsDiff, Math.abs(x - y));
      acc.parent = [Math.min(acc.parent[0], x), Math.max(acc.parent[1], x)];
      acc.candidate = [Math.min(acc.candidate[0], y), Math.max(acc.candidate[1], y)];
    }
    acc.values += da.length;
    const [ia, ib] = [argmaxRows(a), argmaxRows(b)];
    if (ia && ib) {
      for (let r = 0; r < ia.length; r++) if (ia[r] === ib[r]) acc.agree++;
      acc.rows += ia.length;
    }
    this.acc.set(name, acc);
  }

  private addLabels(name: string, a: RawTensor, b: RawTensor) {
    const acc = this.acc.get(name) ?? fresh(false);
    const [da, db] = [a.data as ArrayLike<unknown>, b.data as ArrayLike<unknown>];
    for (let i = 0; i < da.length; i++) if (da[i] === db[i]) acc.agree++;
    acc.rows += da.length;
    acc.values += da.length;
    this.acc.set(name, acc);
  }

  /** Figures per output; throws when the comparison would prove nothing. */
  figures(): OutputFigures[] {
    const out: OutputFigures[] = [];
    for (const [name, a] of this.acc) {
      if (!a.float) {
        out.push({ name, values: a.values, top1: a.agree / a.rows, rows: a.rows });
        continue;
      }
      if (a.parent[0] === a.parent[1])
        throw vacuous(`the parent's output "${name}" is constant (${a.parent[0]}) on the measuring data, so agreement on it would prove nothing`);
      const f: OutputFigures = {
        name,
        values: a.values,
        cosine: a.nb === 0 ? 0 : a.dot / Math.sqrt(a.na * a.nb),
        maxAbsDiff: a.maxAbsDiff,
        ...(a.candidate[0] === a.candidate[1] ? { constantInCandidate: a.candidate[0] } : {}),
        ...(a.nonFinite ? { nonFinite: a.nonFinite } : {}),
      };
      if (a.rows) Object.assign(f, { top1: a.agree / a.rows, rows: a.rows });
      out.push(f);
    }
    if (!out.length) throw vacuous('the parent and the candidate have no output in common to compare (float scores or one label per row)');
    return out;
  }
}

const vacuous = (why: string) => new AppError('invalid_model', `cannot judge the candidate: ${why}`);

export interface Judgement {
  passed: boolean;
  /** The output furthest below its bar (or the closest to it when all pass), with the figure that decided. */
  worst?: { output: string; measure: 'cosine' | 'top1' | 'accuracyDrop'; value: number; bar: number };
  failures: string[];
}

/**
 * The tolerance applied to the figures: cosine on every float output, top-1 agreement on every
 * output with one class per row, except that a labelled dataset's accuracy drop replaces top-1
 * when the tolerance has one. A constant or non-finite candidate output fails whatever the tolerance.
 */
export function judge(figures: OutputFigures[], tol: Tolerance, accuracy?: { before: number; after: number }): Judgement {
  const checks: NonNullable<Judgement['worst']>[] = [];
  const failures: string[] = [];
  const useAccuracy = accuracy !== undefined && tol.accuracyDrop !== undefined;
  for (const f of figures) {
    if (f.nonFinite) failures.push(`output "${f.name}" has ${f.nonFinite} NaN or infinite values of ${f.values} in the candidate`);
    else if (f.constantInCandidate !== undefined)
      failures.push(`output "${f.name}" is constant (${f.constantInCandidate}) in the candidate and not in the parent`);
    if (tol.cosine !== undefined && f.cosine !== undefined) checks.push({ output: f.name, measure: 'cosine', value: f.cosine, bar: tol.cosine });
    if (!useAccuracy && tol.top1 !== undefined && f.top1 !== undefined) checks.push({ output: f.name, measure: 'top1', value: f.top1, bar: tol.top1 });
  }
  if (useAccuracy) checks.push({ output: '(dataset target)', measure: 'accuracyDrop', value: accuracy.before - accuracy.after, bar: tol.accuracyDrop! });
  const margin = (c: (typeof checks)[number]) => (c.measure === 'accuracyDrop' ? c.bar - c.value : c.value - c.bar);
  for (const c of checks)
    if (margin(c) < 0)
      failures.push(
        c.measure === 'accuracyDrop'
          ? `accuracy fell by ${c.value.toFixed(4)} (more than ${c.bar})`
          : `output "${c.output}" ${c.measure} ${c.value.toFixed(4)} < ${c.bar}`,
      );
  const worst = checks.sort((x, y) => margin(x) - margin(y))[0];
  return { passed: failures.length === 0, ...(worst ? { worst } : {}), failures };
}

/** The tolerance of a job: the method's defaults with the request's fields over them. */
export const toleranceFor = (method: CompressMethod, requested?: Tolerance): Tolerance => ({ ...DEFAULT_TOLERANCE[method], ...(requested ?? {}) });

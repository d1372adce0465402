// Shapley value estimates by antithetic permutation sampling against a background sample. For a
// permutation pi and a background row z, players are switched from z to x one at a time in pi's
// order; each switch's change of the output is that player's contribution. Every permutation is
// walked against every background row, so a row's attributions sum exactly to f(x) - mean f(z).
// Each permutation is paired with its reverse (antithetic sampling: lower variance for the same cost).
// The walks' intermediate points are generated lazily and cut into runs of at most `runRows` points
// and `runBytes` bytes, a walk split across runs where it is longer: memory stays bounded whatever
// the rows, samples, background and width. What a point is made of (a row-major FP32 matrix, or one
// value per column input) is the caller's: this file sees players and points (walk segments).
import { EXPLAIN_RUN_BYTES } from '../../core/jobs/explain.ts';
import { Rng } from '../training/child/data.ts';

type Scores = { scores: Float32Array; classes: number };

/** Evaluates the model on `rows` rows (row-major, `features` wide); returns [rows, classes] scores. It may take `x` over (transfer its buffer). */
export type Evaluate = (x: Float32Array, rows: number) => Promise<Scores>;

/** Points j0..j1 (1 <= j0 <= j1 <= F-1) of the walk of `perm` from background row `b` to row `row`: point j takes players perm[0..j) from the row. */
export interface Segment {
  row: number;
  perm: Int32Array;
  b: number;
  j0: number;
  j1: number;
}

export interface ShapleyPlan {
  rows: number;
  /** Players (features or columns). */
  features: number;
  backgroundRows: number;
  /** Permutations per row; rounded up to an even number (pairs). */
  samples: number;
  seed: number;
  /** Class column to attribute; default each row's argmax. */
  classIndex?: number;
  /** Most points per evaluation of perturbations. */
  runRows: number;
  /** Most bytes per evaluation of perturbations, with `pointBytes` (default EXPLAIN_RUN_BYTES). */
  runBytes?: number;
  /** Bytes of one point as fed to the model (default 4 per player). */
  pointBytes?: number;
  /** Per row: the number its permutations are seeded with (default its position): a batch row's number in the file, so chunking does not change it. */
  rowKeys?: ArrayLike<number>;
  /** Evaluations of perturbations in flight at once (default 1): engine threads can run them side by side. */
  parallel?: number;
}

/** The three kinds of evaluation a plan needs: the rows, the background rows, and runs of walk points. */
export interface ShapleyEvaluations {
  rows(): Promise<Scores>;
  background(): Promise<Scores>;
  points(segments: Segment[], count: number): Promise<Scores>;
}

export interface ShapleyOptions extends Omit<ShapleyPlan, 'backgroundRows'> {
  x: Float32Array;
  background: Float32Array;
}

export interface ShapleyResult {
  /** [rows, features] */
  attributions: Float32Array;
  /** Per row: mean background score of the attributed class. */
  base: number[];
  classes: number[];
  /** Per row: f(x) for the attributed class. */
  value: number[];
}

/** A seeded stream per row: the same request gives the same attributions, whatever else runs. */
const rowRng = (seed: number, row: number) => new Rng((seed ^ Math.imul(row + 1, 0x9e3779b1)) >>> 0);

function pickClasses(fx: Float32Array, rows: number, classes: number, classIndex: number | undefined): number[] {
  if (classIndex !== undefined) {
    if (classIndex >= classes) throw new RangeError(`explainClass ${classIndex} is out of range: the output has ${classes} column${classes > 1 ? 's' : ''}`);
    return new Array<number>(rows).fill(classIndex);
  }
  return Array.from({ length: rows }, (_, n) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (fx[n * classes + c]! > fx[n * classes + best]!) best = c;
    return best;
  });
}

/** Walks every row's permutations (generated as reached, a pair at a time) against every background row, handing out points in segments. */
class WalkCursor {
  private row = 0;
  private s = 0;
  private b = 0;
  private j = 1;
  private rng: Rng | null = null;
  private perm: Int32Array = new Int32Array(0);
  constructor(private readonly p: ShapleyPlan & { samples: number }) {}

  /** Segments of up to `max` points in walk order; empty when every walk is handed out. */
  take(max: number): Segment[] {
    const { rows, features: F, backgroundRows: B, samples } = this.p;
    const out: Segment[] = [];
    let left = max;
    while (left > 0 && this.row < rows) {
      if (!this.rng) {
        this.rng = rowRng(this.p.seed, this.p.rowKeys ? this.p.rowKeys[this.row]! : this.row);
        this.s = 0;
      }
      if (this.b === 0 && this.j === 1) {
        // Even s: a fresh shuffle; odd s: its reverse.
        this.perm = this.s % 2 === 0 ? this.rng.shuffle(Int32Array.from({ length: F }, (_, i) => i)) : this.perm.slice().reverse();
      }
      const j1 = Math.min(F - 1, this.j + left - 1);
      out.push({ row: this.row, perm: this.perm, b: this.b, j0: this.j, j1 });
      left -= j1 - this.j + 1;
      this.j = j1 + 1;
      if (this.j <= F - 1) continue;
      this.j = 1;
      if (++this.b < B) continue;
      this.b = 0;
      if (++this.s < samples) continue;
      this.rng = null;
      this.row++;
    }
    return out;
  }
}

/** Shapley values of a plan's rows, with the evaluations the caller builds. */
export async function shapleyPlan(o: ShapleyPlan, ev: ShapleyEvaluations): Promise<ShapleyResult> {
  const { rows, features: F, backgroundRows: B } = o;
  const fxRun = await ev.rows();
  const classes = pickClasses(fxRun.scores, rows, fxRun.classes, o.classIndex);
  const fzRun = await ev.background();
  const C = fzRun.classes;
  const fx = classes.map((c, n) => fxRun.scores[n * fxRun.classes + c]!);
  const fz = (b: number, c: number) => fzRun.scores[b * C + c]!;
  const base = classes.map((c) => {
    let s = 0;
    for (let b = 0; b < B; b++) s += fz(b, c);
    return s / B;
  });
  const samples = o.samples + (o.samples % 2);
  // One player: every walk is the single switch from z to x, exactly f(x) - base; nothing to sample.
  if (F === 1) return { attributions: Float32Array.from(fx, (v, n) => v - base[n]!), base, classes, value: fx };

  const phi = new Float64Array(rows * F);
  const total = rows * samples * B * (F - 1);
  const parallel = Math.max(1, o.parallel ?? 1);
  const byBytes = Math.floor((o.runBytes ?? EXPLAIN_RUN_BYTES) / Math.max(1, o.pointBytes ?? 4 * F));
  // With several runs in flight, the points are spread evenly over at least `parallel` runs.
  const perRun = Math.max(1, Math.min(o.runRows, byBytes, Math.ceil(total / parallel)));
  const cursor = new WalkCursor({ ...o, samples });
  const carry = { prev: 0 };
  const inFlight: { segments: Segment[]; count: number; scores: Promise<Scores> }[] = [];
  const start = () => {
    const segments = cursor.take(perRun);
    if (!segments.length) return;
    const count = segments.reduce((n, s) => n + s.j1 - s.j0 + 1, 0);
    const scores = ev.points(segments, count);
    scores.catch(() => {}); // surfaced when its turn comes
    inFlight.push({ segments, count, scores });
  };
  for (let i = 0; i < parallel; i++) start();
  // Runs are accumulated in walk order, so the float64 sums do not depend on how the walks were cut.
  while (inFlight.length) {
    const run = inFlight.shift()!;
    const y = await run.scores;
    start();
    accumulate(phi, run.segments, y, carry, { F, c: classes, fx, fz });
  }
  const scale = 1 / (samples * B);
  return { attributions: Float32Array.from(phi, (v) => v * scale), base, classes, value: fx };
}

/**
 * Adds a run's contributions. On a walk y[0] = f(z_b), y[F] = f(x), and player perm[k] gets
 * y[k+1] - y[k]. Segments arrive in walk order, so a segment that does not start its walk continues
 * the one handled last: `carry.prev` (its last score) crosses run boundaries.
 */
function accumulate(
  phi: Float64Array,
  segments: Segment[],
  y: Scores,
  carry: { prev: number },
  k: { F: number; c: number[]; fx: number[]; fz: (b: number, c: number) => number },
) {
  const { F } = k;
  let at = 0;
  let prev = carry.prev;
  for (const { row, perm, b, j0, j1 } of segments) {
    const base = row * F;
    const c = k.c[row]!;
    if (j0 === 1) prev = k.fz(b, c);
    for (let j = j0; j <= j1; j++) {
      const cur = y.scores[at++ * y.classes + c]!;
      phi[base + perm[j - 1]!]! += cur - prev;
      prev = cur;
    }
    if (j1 === F - 1) phi[base + perm[F - 1]!]! += k.fx[row]! - prev;
  }
  carry.prev = prev;
}

/** Shapley values of rows of a row-major FP32 matrix (one player per feature). */
export function shapley(o: ShapleyOptions, evaluate: Evaluate): Promise<ShapleyResult> {
  const { x, features: F, background: bg } = o;
  return shapleyPlan(
    { ...o, backgroundRows: bg.length / F },
    {
      rows: () => evaluate(x.slice(), o.rows),
      background: () => evaluate(bg.slice(), bg.length / F),
      points: (segments, count) => evaluate(matrixPoints(segments, count, x, bg, F), count),
    },
  );
}

/** The segments' points as rows of a matrix: background row b with players perm[0..j) taken from the row. */
function matrixPoints(segments: Segment[], count: number, x: Float32Array, bg: Float32Array, F: number): Float32Array {
  const out = new Float32Array(count * F);
  const point = new Float32Array(F);
  let at = 0;
  for (const { row, perm, b, j0, j1 } of segments) {
    point.set(bg.subarray(b * F, (b + 1) * F));
    for (let i = 0; i < j0 - 1; i++) point[perm[i]!] = x[row * F + perm[i]!]!;
    for (let j = j0; j <= j1; j++) {
      const f = perm[j - 1]!;
      point[f] = x[row * F + f]!;
      out.set(point, at);
      at += F;
    }
  }
  return out;
}

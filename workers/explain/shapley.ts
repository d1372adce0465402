// Shapley value estimates by antithetic permutation sampling against a background sample. For a
// permutation pi and a background row z, features are switched from z to x one at a time in pi's
// order; each switch's change of the output is that feature's contribution. Every permutation is
// walked against every background row, so a row's attributions sum exactly to f(x) - mean f(z).
// Each permutation is paired with its reverse (antithetic sampling: lower variance for the same cost).
import { Rng } from '../trainer/data.ts';

/** Evaluates the model on `rows` rows (row-major, `features` wide); returns [rows, classes] scores. It may take `x` over (transfer its buffer). */
export type Evaluate = (x: Float32Array, rows: number) => Promise<{ scores: Float32Array; classes: number }>;

export interface ShapleyOptions {
  x: Float32Array;
  rows: number;
  features: number;
  background: Float32Array;
  /** Permutations per row; rounded up to an even number (pairs). */
  samples: number;
  seed: number;
  /** Class column to attribute; default each row's argmax. */
  classIndex?: number;
  /** Most rows per evaluation of perturbations. */
  runRows: number;
  /** Per row: the number its permutations are seeded with (default its position): a batch row's number in the file, so chunking does not change it. */
  rowKeys?: ArrayLike<number>;
  /** Evaluations of perturbations in flight at once (default 1): engine threads can run them side by side. */
  parallel?: number;
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

function permutations(rng: Rng, features: number, samples: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let s = 0; s < samples; s += 2) {
    const p = rng.shuffle(Int32Array.from({ length: features }, (_, i) => i));
    out.push(p, p.slice().reverse());
  }
  return out;
}

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

interface Walk {
  row: number;
  perm: Int32Array;
}

export async function shapley(o: ShapleyOptions, evaluate: Evaluate): Promise<ShapleyResult> {
  const { x, rows, features: F, background: bg } = o;
  const B = bg.length / F;
  const fxRun = await evaluate(x.slice(), rows);
  const classes = pickClasses(fxRun.scores, rows, fxRun.classes, o.classIndex);
  const fzRun = await evaluate(bg.slice(), B);
  const C = fzRun.classes;
  const fx = classes.map((c, n) => fxRun.scores[n * fxRun.classes + c]!);
  const fz = (b: number, c: number) => fzRun.scores[b * C + c]!;
  const base = classes.map((c) => {
    let s = 0;
    for (let b = 0; b < B; b++) s += fz(b, c);
    return s / B;
  });
  const phi = new Float64Array(rows * F);
  const samples = o.samples + (o.samples % 2);
  const walks: Walk[] = [];
  for (let n = 0; n < rows; n++) for (const perm of permutations(rowRng(o.seed, o.rowKeys ? o.rowKeys[n]! : n), F, samples)) walks.push({ row: n, perm });

  // Rows of one walk: B x (F - 1) intermediate points; the endpoints f(z) and f(x) are known.
  const perWalk = B * (F - 1);
  const parallel = Math.max(1, o.parallel ?? 1);
  // With several runs in flight, the walks are spread evenly over at least `parallel` runs.
  const walksPerRun = Math.max(1, Math.min(Math.floor(o.runRows / Math.max(1, perWalk)), Math.ceil(walks.length / parallel)));
  const runs: Walk[][] = [];
  for (let w0 = 0; w0 < walks.length; w0 += walksPerRun) runs.push(walks.slice(w0, w0 + walksPerRun));
  // Each run's contributions are added as it ends; float64 sums of the same terms in another order
  // may differ in the last bits, so runs are accumulated in their order for reproducible results.
  const results: (Promise<{ scores: Float32Array; classes: number }> | undefined)[] = [];
  let next = 0;
  const start = () => {
    const chunk = runs[next++]!;
    const p = perWalk > 0 ? evaluate(buildPoints(chunk, x, bg, F, B), chunk.length * perWalk) : Promise.resolve({ scores: new Float32Array(0), classes: C });
    p.catch(() => {}); // surfaced when its turn comes
    results.push(p);
  };
  while (next < runs.length && next < parallel) start();
  for (let i = 0; i < runs.length; i++) {
    const y = await results[i]!;
    results[i] = undefined; // its scores are no longer held
    if (next < runs.length) start();
    runs[i]!.forEach((wk, j) => accumulate(phi, wk, y.scores, y.classes, j * perWalk, { F, B, c: classes[wk.row]!, fx: fx[wk.row]!, fz }));
  }
  const scale = 1 / (samples * B);
  return { attributions: Float32Array.from(phi, (v) => v * scale), base, classes, value: fx };
}

/** The walks' intermediate points: for background row b and step j, z_b with the first j features of the permutation taken from x. */
function buildPoints(chunk: Walk[], x: Float32Array, bg: Float32Array, F: number, B: number): Float32Array {
  const out = new Float32Array(chunk.length * B * (F - 1) * F);
  let at = 0;
  const point = new Float32Array(F);
  for (const { row, perm } of chunk) {
    for (let b = 0; b < B; b++) {
      point.set(bg.subarray(b * F, (b + 1) * F));
      for (let j = 0; j < F - 1; j++) {
        const f = perm[j]!;
        point[f] = x[row * F + f]!;
        out.set(point, at);
        at += F;
      }
    }
  }
  return out;
}

/** Adds one walk's contributions: feature perm[j] gets y[j+1] - y[j], with y[0] = f(z_b) and y[F] = f(x). */
function accumulate(
  phi: Float64Array,
  wk: Walk,
  scores: Float32Array,
  C: number,
  offset: number,
  k: { F: number; B: number; c: number; fx: number; fz: (b: number, c: number) => number },
) {
  const { F, B, c } = k;
  const base = wk.row * F;
  for (let b = 0; b < B; b++) {
    let prev = k.fz(b, c);
    for (let j = 0; j < F; j++) {
      const cur = j === F - 1 ? k.fx : scores[(offset + b * (F - 1) + j) * C + c]!;
      phi[base + wk.perm[j]!]! += cur - prev;
      prev = cur;
    }
  }
}

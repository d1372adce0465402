// Gradient-boosted trees on the encoded feature matrix (the same float32 values the exported graph's
// front end computes: imputed and standardized numbers, missing indicators, one-hot categories), grown
// as scikit-learn's HistGradientBoosting does: each feature's values in at most `maxBins` bins, split
// candidates are bin edges scored from gradient/hessian histograms, leaves grown best-first up to
// `maxLeaves` (and `maxDepth`), leaf value -G / (H + l2) times the learning rate. Squared error for
// regression, log-loss for classes (one tree per round for two classes, one per class for more).
// Rounds stop early when the validation loss has not improved for `patience` rounds, or at the
// deadline; the ensemble keeps the best round. Missing values never reach the trees: the front end
// fills them and adds indicators. There is no sampling, so the same data gives the same trees.

export interface GbdtOptions {
  /** Most boosting rounds. */
  trees: number;
  maxLeaves: number;
  maxDepth: number;
  learningRate: number;
  minSamplesLeaf: number;
  /** L2 penalty on leaf values (scikit-learn's l2_regularization). */
  l2: number;
  maxBins: number;
  patience: number;
  /** Epoch milliseconds after which no round starts (the job's time budget). */
  deadline?: number;
}

/** One tree, nodes in creation order (0 is the root); a leaf has feature -1. `x[feature] <= threshold` goes left. */
export interface Tree {
  /** Which raw score the tree adds to (its class for more than two classes, else 0). */
  target: number;
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  /** Leaf values (0 for branches), learning rate applied. */
  value: number[];
}

export interface Ensemble {
  /** Raw scores per row: 1 (regression, two classes: the log-odds of the second class) or the number of classes. */
  outputs: number;
  base: Float32Array;
  trees: Tree[];
  /** Rounds kept (the best validation round), rounds run. */
  rounds: number;
  roundsRun: number;
  /** Validation loss after each round run (squared error or log-loss). */
  curve: number[];
}

export interface GbdtData {
  /** Row-major [rows, width], float32, no NaN. */
  x: Float32Array;
  width: number;
  /** Class index or target value per row. */
  y: Float32Array;
}

/** Per feature, the ascending split thresholds (training values): bin b holds x <= thresholds[b] (and above the previous one). */
export function binEdges(d: GbdtData, rows: Int32Array, maxBins: number): Float32Array[] {
  const edges: Float32Array[] = [];
  for (let f = 0; f < d.width; f++) {
    const v = Float32Array.from(rows, (r) => d.x[r * d.width + f]!).sort();
    const distinct: number[] = [];
    for (let i = 0; i < v.length; i++) if (i === 0 || v[i] !== v[i - 1]) distinct.push(v[i]!);
    // The largest value is no threshold (nothing would go right of it).
    if (distinct.length <= maxBins) {
      edges.push(Float32Array.from(distinct.slice(0, -1)));
      continue;
    }
    const picked: number[] = [];
    for (let b = 1; b < maxBins; b++) {
      const t = v[Math.min(v.length - 1, Math.floor((b * v.length) / maxBins))]!;
      if (t !== picked[picked.length - 1] && t < distinct[distinct.length - 1]!) picked.push(t);
    }
    edges.push(Float32Array.from(picked));
  }
  return edges;
}

/** The bin of each value: the first threshold it is <= to (or past the last); x <= edges[b] exactly when bin <= b. */
export function binRows(d: GbdtData, rows: Int32Array, edges: Float32Array[]): Uint8Array[] {
  return edges.map((e, f) => {
    const out = new Uint8Array(rows.length);
    rows.forEach((r, i) => {
      const x = d.x[r * d.width + f]!;
      let lo = 0;
      let hi = e.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x <= e[mid]!) hi = mid;
        else lo = mid + 1;
      }
      out[i] = lo;
    });
    return out;
  });
}

interface Split {
  gain: number;
  feature: number;
  bin: number;
}

interface Leaf {
  node: number;
  rows: Int32Array;
  depth: number;
  g: number;
  h: number;
  split?: Split;
}

const score = (g: number, h: number, l2: number) => (g * g) / (h + l2);

/** The best split of a node's rows (indices into the binned matrix), or undefined. */
function bestSplit(bins: Uint8Array[], edges: Float32Array[], rows: Int32Array, grad: Float64Array, hess: Float64Array, g: number, h: number, o: GbdtOptions) {
  let best: Split | undefined;
  const parent = score(g, h, o.l2);
  for (let f = 0; f < bins.length; f++) {
    const nb = edges[f]!.length + 1;
    if (nb < 2) continue;
    const hg = new Float64Array(nb);
    const hh = new Float64Array(nb);
    const hc = new Int32Array(nb);
    const col = bins[f]!;
    for (const r of rows) {
      const b = col[r]!;
      hg[b]! += grad[r]!;
      hh[b]! += hess[r]!;
      hc[b]!++;
    }
    let gl = 0;
    let hl = 0;
    let cl = 0;
    for (let b = 0; b + 1 < nb; b++) {
      gl += hg[b]!;
      hl += hh[b]!;
      cl += hc[b]!;
      const cr = rows.length - cl;
      if (cl < o.minSamplesLeaf) continue;
      if (cr < o.minSamplesLeaf) break;
      if (hl < 1e-3 || h - hl < 1e-3) continue;
      const gain = score(gl, hl, o.l2) + score(g - gl, h - hl, o.l2) - parent;
      if (gain > 1e-12 && (!best || gain > best.gain)) best = { gain, feature: f, bin: b };
    }
  }
  return best;
}

/** Grows one tree on the gradients of `rows` (indices into the binned matrix), best-first. */
function growTree(
  bins: Uint8Array[],
  edges: Float32Array[],
  grad: Float64Array,
  hess: Float64Array,
  target: number,
  o: GbdtOptions,
): { t: Tree; binOf: number[] } {
  const t: Tree = { target, feature: [], threshold: [], left: [], right: [], value: [] };
  const binOf: number[] = [];
  const add = () => {
    binOf.push(-1);
    t.feature.push(-1);
    t.threshold.push(0);
    t.left.push(-1);
    t.right.push(-1);
    t.value.push(0);
    return t.feature.length - 1;
  };
  const leaf = (rows: Int32Array, depth: number): Leaf => {
    let g = 0;
    let h = 0;
    for (const r of rows) {
      g += grad[r]!;
      h += hess[r]!;
    }
    const l: Leaf = { node: add(), rows, depth, g, h };
    if (depth < o.maxDepth && rows.length >= 2 * o.minSamplesLeaf) l.split = bestSplit(bins, edges, rows, grad, hess, g, h, o);
    return l;
  };
  const all = Int32Array.from({ length: bins[0]?.length ?? grad.length }, (_, i) => i);
  const open: Leaf[] = [leaf(all, 0)];
  while (open.length < o.maxLeaves) {
    let i = -1;
    for (let j = 0; j < open.length; j++) if (open[j]!.split && (i < 0 || open[j]!.split!.gain > open[i]!.split!.gain)) i = j;
    if (i < 0) break;
    const p = open.splice(i, 1)[0]!;
    const s = p.split!;
    const col = bins[s.feature]!;
    const lr: number[] = [];
    const rr: number[] = [];
    for (const r of p.rows) (col[r]! <= s.bin ? lr : rr).push(r);
    t.feature[p.node] = s.feature;
    t.threshold[p.node] = edges[s.feature]![s.bin]!;
    binOf[p.node] = s.bin;
    const a = leaf(Int32Array.from(lr), p.depth + 1);
    const b = leaf(Int32Array.from(rr), p.depth + 1);
    t.left[p.node] = a.node;
    t.right[p.node] = b.node;
    open.push(a, b);
  }
  for (const l of open) t.value[l.node] = Math.fround((-l.g / (l.h + o.l2 + 1e-12)) * o.learningRate);
  return { t, binOf };
}

/** Raw scores of one row of a row-major matrix: base plus every tree's leaf. */
export function rawScores(e: Pick<Ensemble, 'outputs' | 'base' | 'trees'>, x: Float32Array, width: number, row: number, out: Float64Array): void {
  for (let k = 0; k < e.outputs; k++) out[k] = e.base[k]!;
  for (const t of e.trees) {
    let n = 0;
    while (t.feature[n]! >= 0) n = x[row * width + t.feature[n]!]! <= t.threshold[n]! ? t.left[n]! : t.right[n]!;
    out[t.target]! += t.value[n]!;
  }
}

/** Trains on `trainRows`, stopping early on the loss of `valRows`; `classes` is 0 for regression. */
export function trainGbdt(
  d: GbdtData,
  trainRows: Int32Array,
  valRows: Int32Array,
  classes: number,
  o: GbdtOptions,
  onRound?: (round: number, valLoss: number) => void,
): Ensemble {
  const K = classes === 0 || classes === 2 ? 1 : classes;
  const n = trainRows.length;
  const edges = binEdges(d, trainRows, o.maxBins);
  const bins = binRows(d, trainRows, edges);
  const vbins = binRows(d, valRows, edges);
  const yt = Float64Array.from(trainRows, (r) => d.y[r]!);
  const yv = Float64Array.from(valRows, (r) => d.y[r]!);
  const base = new Float32Array(K);
  if (classes === 0) base[0] = Math.fround(yt.reduce((a, b) => a + b, 0) / n);
  else if (K === 1) {
    const p = Math.min(1 - 1e-6, Math.max(1e-6, yt.reduce((a, b) => a + b, 0) / n));
    base[0] = Math.fround(Math.log(p / (1 - p)));
  } else for (let k = 0; k < K; k++) base[k] = Math.fround(Math.log(Math.max(1e-6, yt.filter((y) => y === k).length / n)));
  const ft = new Float64Array(n * K);
  const fv = new Float64Array(valRows.length * K);
  for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) ft[i * K + k] = base[k]!;
  for (let i = 0; i < valRows.length; i++) for (let k = 0; k < K; k++) fv[i * K + k] = base[k]!;
  const trees: Tree[] = [];
  const curve: number[] = [];
  let best = Infinity;
  let bestRound = 0;
  const grad = new Float64Array(n);
  const hess = new Float64Array(n);
  const p = new Float64Array(K);
  for (let round = 1; round <= o.trees; round++) {
    if (o.deadline !== undefined && Date.now() > o.deadline && round > 1) break;
    for (let k = 0; k < K; k++) {
      for (let i = 0; i < n; i++) {
        if (classes === 0) {
          grad[i] = ft[i]! - yt[i]!;
          hess[i] = 1;
        } else {
          probs(ft, i, K, p);
          const yk = K === 1 ? yt[i]! : yt[i] === k ? 1 : 0;
          const pk = K === 1 ? p[0]! : p[k]!;
          grad[i] = pk - yk;
          hess[i] = Math.max(pk * (1 - pk), 1e-16);
        }
      }
      const { t, binOf } = growTree(bins, edges, grad, hess, k, o);
      trees.push(t);
      // Scores move by the tree's leaves, walked on the bins (bin <= b exactly when x <= edges[b]).
      const walk = (b: Uint8Array[], i: number) => {
        let nd = 0;
        while (t.feature[nd]! >= 0) nd = b[t.feature[nd]!]![i]! <= binOf[nd]! ? t.left[nd]! : t.right[nd]!;
        return t.value[nd]!;
      };
      for (let i = 0; i < n; i++) ft[i * K + k]! += walk(bins, i);
      for (let i = 0; i < valRows.length; i++) fv[i * K + k]! += walk(vbins, i);
    }
    const loss = lossOf(fv, yv, K, classes);
    curve.push(loss);
    onRound?.(round, loss);
    if (loss < best - 1e-12) {
      best = loss;
      bestRound = round;
    } else if (round - bestRound >= o.patience) break;
  }
  const kept = Math.max(1, bestRound);
  return { outputs: K, base, trees: trees.slice(0, kept * K), rounds: kept, roundsRun: curve.length, curve };
}

/** Class probabilities of row i from raw scores (sigmoid for one score, softmax for more). */
function probs(f: Float64Array, i: number, K: number, out: Float64Array): void {
  if (K === 1) {
    out[0] = 1 / (1 + Math.exp(-f[i]!));
    return;
  }
  let m = -Infinity;
  for (let k = 0; k < K; k++) m = Math.max(m, f[i * K + k]!);
  let s = 0;
  for (let k = 0; k < K; k++) s += out[k] = Math.exp(f[i * K + k]! - m);
  for (let k = 0; k < K; k++) out[k]! /= s;
}

/** Mean squared error, or mean log-loss. */
function lossOf(f: Float64Array, y: Float64Array, K: number, classes: number): number {
  if (!y.length) return 0;
  let s = 0;
  const p = new Float64Array(K);
  for (let i = 0; i < y.length; i++) {
    if (classes === 0) {
      s += (f[i]! - y[i]!) ** 2;
      continue;
    }
    probs(f, i, K, p);
    const py = K === 1 ? (y[i] === 1 ? p[0]! : 1 - p[0]!) : p[y[i]!]!;
    s -= Math.log(Math.max(py, 1e-15));
  }
  return s / y.length;
}

// Training: seconds per epoch of the trainer (TensorFlow.js, wasm backend, one thread) on an MLP
// 64-128-128-10 over 100,000 synthetic rows, batch 200, Adam, against scikit-learn's MLPClassifier
// with the same sizes, batch and solver run by /usr/bin/python3 in the same run (best of 1 and 2 BLAS
// threads; MODELQ_BENCH_REPEATS interleaved rounds, medians; bench/lib/fair.ts).
// Env: BENCH_TRAIN_ROWS, BENCH_TRAIN_EPOCHS=3
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import type { Hyperparameters } from '../core/jobs/train.ts';
import { Rng } from '../workers/training/child/data.ts';
import { initState, train } from '../workers/training/child/mlp.ts';
import { initTf } from '../workers/training/child/tf.ts';
import { bestOfThreads, interleave, ratioText, repeats } from './lib/fair.ts';

const ROWS = Number(process.env.BENCH_TRAIN_ROWS ?? 100_000);
const EPOCHS = Number(process.env.BENCH_TRAIN_EPOCHS ?? 3);
const F = 64;
const C = 10;
const HIDDEN = [128, 128];
const BATCH = 200;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Rows from a random linear teacher: labels depend on the features, so the loss actually falls. */
function synthetic(rows: number): { x: Float32Array; y: Int32Array } {
  const rng = new Rng(1);
  const teacher = Float32Array.from({ length: F * C }, () => rng.next() * 2 - 1);
  const x = Float32Array.from({ length: rows * F }, () => rng.next() * 2 - 1);
  const y = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -Infinity;
    for (let c = 0; c < C; c++) {
      let z = 0;
      for (let f = 0; f < F; f++) z += x[r * F + f]! * teacher[f * C + c]!;
      if (z > best) {
        best = z;
        y[r] = c;
      }
    }
  }
  return { x, y };
}

/** Seconds per epoch of each epoch, and the last training loss. */
async function ours(): Promise<{ perEpoch: number[]; loss: number }> {
  const tf = await initTf();
  const { x, y } = synthetic(ROWS);
  const hp: Hyperparameters = {
    task: 'classification',
    target: 'y',
    features: Array.from({ length: F }, (_, i) => `f${i}`),
    model: { type: 'mlp', hidden: HIDDEN },
    epochs: EPOCHS,
    batchSize: BATCH,
    learningRate: 1e-3,
    validationSplit: 0.1,
    patience: 1000,
    l2: 1e-4,
    seed: 1,
  };
  const sizes = [F, ...HIDDEN, C];
  const val = Math.min(1000, ROWS);
  const t = tf.tidy(() => ({
    xTrain: tf.tensor2d(x, [ROWS, F]),
    yTrain: tf.oneHot(tf.tensor1d(y, 'int32'), C).toFloat(),
    xVal: tf.tensor2d(x.subarray(0, val * F), [val, F]),
    yVal: tf.oneHot(tf.tensor1d(y.subarray(0, val), 'int32'), C).toFloat(),
  }));
  const perEpoch: number[] = [];
  let loss = NaN;
  let t0 = performance.now();
  await train({
    tf,
    hp,
    sizes,
    ...t,
    targetScale: 1,
    state: initState(sizes, 1, 'bench'),
    onEpoch: async (_s, p) => {
      perEpoch.push((performance.now() - t0) / 1000);
      loss = p.loss;
      t0 = performance.now();
    },
  });
  tf.dispose(Object.values(t));
  return { perEpoch, loss };
}

const SKLEARN = `
import json, sys, time, warnings
import numpy as np
from sklearn.neural_network import MLPClassifier
warnings.filterwarnings('ignore')
rows, epochs = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
teacher = rng.uniform(-1, 1, (64, 10)).astype(np.float32)
X = rng.uniform(-1, 1, (rows, 64)).astype(np.float32)
y = (X @ teacher).argmax(1)
clf = MLPClassifier(hidden_layer_sizes=(128, 128), batch_size=200, solver='adam', learning_rate_init=1e-3,
                    max_iter=epochs, tol=0, n_iter_no_change=epochs + 1, random_state=0)
t = time.perf_counter(); clf.fit(X, y); s = time.perf_counter() - t
print(json.dumps({'perEpoch': s / clf.n_iter_, 'loss': clf.loss_, 'epochs': clf.n_iter_}))
`;

/** `threads`: BLAS threads for numpy. */
function sklearn(threads: number): { perEpoch: number; loss: number } | { error: string } {
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), OPENBLAS_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  try {
    const out = execFileSync('/usr/bin/python3', ['-c', SKLEARN, String(ROWS), String(EPOCHS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
    return JSON.parse(out.trim().split('\n').pop()!);
  } catch (e) {
    return {
      error: String((e as { stderr?: string }).stderr || (e as Error).message)
        .trim()
        .split('\n')
        .pop()!,
    };
  }
}

export async function benchTrain() {
  console.log(`train: MLP ${[F, ...HIDDEN, C].join('-')}, ${ROWS} rows, batch ${BATCH}, Adam, ${EPOCHS} epochs each, ${repeats()} rounds`);
  // Rounds of scikit-learn (best of its BLAS thread settings) then the trainer (bench/lib/fair.ts);
  // figures are epochs per second, so the ratio is modelq's speed over scikit-learn's.
  let skError: string | undefined;
  let loss = NaN;
  const r = await interleave({
    baseline: async () => {
      const b = await bestOfThreads(
        async (threads) => sklearn(threads),
        (x) => ('error' in x ? -1 : 1 / x.perEpoch),
      );
      for (const { threads, result } of b.all)
        console.log(
          'error' in result
            ? `scikit-learn (${threads} BLAS threads): not measured (${(skError = result.error)}); apt-get install python3-sklearn`
            : `scikit-learn MLPClassifier (${threads} BLAS threads): ${result.perEpoch.toFixed(2)} s/epoch, last loss ${result.loss.toFixed(3)}`,
        );
      return 'error' in b.best ? NaN : 1 / b.best.perEpoch;
    },
    platform: async () => {
      const o = await ours();
      loss = o.loss;
      const mine = median(o.perEpoch);
      console.log(
        `modelq (tfjs wasm, 1 thread): ${mine.toFixed(2)} s/epoch (median; epochs ${o.perEpoch.map((s) => s.toFixed(2)).join(', ')}), last loss ${o.loss.toFixed(3)}`,
      );
      return 1 / mine;
    },
  });
  const mine = 1 / r.medianPlatform;
  console.log(`modelq: ${mine.toFixed(2)} s/epoch (median of ${r.platform.length} rounds), last loss ${loss.toFixed(3)}`);
  if (skError !== undefined || !Number.isFinite(r.ratio)) return { ours: mine };
  const sk = 1 / r.medianBaseline;
  console.log(`scikit-learn (best of its thread settings): ${sk.toFixed(2)} s/epoch (median of ${r.baseline.length} rounds)`);
  console.log(`speed modelq / scikit-learn: ${ratioText(r.ratio, r.ratios.length)} (time per epoch ${(1 / r.ratio).toFixed(2)}x scikit-learn's)`);
  return { ours: mine, sklearn: sk, ratio: 1 / r.ratio };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await benchTrain();

// Quality with defaults on real data: test accuracy of the exported model on the 8x8 digits, breast
// cancer and wine datasets within one point of scikit-learn's StandardScaler + MLPClassifier((64,))
// on the same stratified 75/25 splits. Needs Debian's python3-sklearn for /usr/bin/python3 (it ships
// the datasets), which .ci/run installs. Trains in this process with the defaults the HTTP edge fills in for the MLP (named: tabular jobs default to auto).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { datasetKey, profileDataset } from '../../core/datasets.ts';
import { resolveTrain } from '../../core/jobs/train.ts';
import { FsStore } from '../../core/storage/index.ts';
import { runTraining } from '../../workers/training/child/run-training.ts';
import { tmpDir } from '../fixtures/models.ts';

const PYTHON = '/usr/bin/python3';
const SPLITS = [0, 1, 2, 3, 4];
const DATASETS = ['digits', 'breast_cancer', 'wine'] as const;

function hasSklearn(): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import sklearn.neural_network, sklearn.datasets'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Writes each split as train/test CSV and prints scikit-learn's test accuracy per split, averaged over
// three MLP seeds (its default is unseeded, so one seed alone is a draw, not a reference).
const REFERENCE = `
import json, sys, warnings
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
warnings.filterwarnings('ignore')
out, splits = sys.argv[1], [int(s) for s in sys.argv[2].split(',')]
res = {}
for name in ['digits', 'breast_cancer', 'wine']:
    X, y = getattr(datasets, 'load_' + name)(return_X_y=True)
    res[name] = []
    for s in splits:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=s)
        accs = [make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), random_state=m)).fit(Xtr, ytr).score(Xte, yte) for m in range(3)]
        res[name].append(sum(accs) / len(accs))
        head = ','.join(['f%d' % i for i in range(X.shape[1])] + ['target'])
        for part, A, b in [('train', Xtr, ytr), ('test', Xte, yte)]:
            with open('%s/%s-%d-%s.csv' % (out, name, s, part), 'w') as f:
                f.write(head + '\\n' + ''.join(','.join(repr(float(v)) for v in r) + ',%d\\n' % t for r, t in zip(A, b)))
print(json.dumps(res))
`;

const dir = tmpDir('quality');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Trains with defaults on one split's training file; returns the exported model's accuracy on its test file. */
async function ours(store: FsStore, name: string, split: number): Promise<number> {
  const id = `ds_${String(split).padStart(2, '0')}${'0'.repeat(17)}${DATASETS.indexOf(name as never)}`;
  const key = datasetKey(id, 'csv');
  const put = await store.put(key, fs.readFileSync(path.join(dir, `${name}-${split}-train.csv`)));
  const ds = { id, name, format: 'csv' as const, key, bytes: put.bytes, createdAt: '', ...(await profileDataset(await store.read(key), 'csv')) };
  const job = resolveTrain({ dataset: id, target: 'target', registerAs: 'q', seed: 0, model: { type: 'mlp' } }, ds);
  expect(job.hyperparameters.task).toBe('classification');
  const out = await runTraining({ store, jobId: `${name}-${split}`, job });
  const [head, ...lines] = fs
    .readFileSync(path.join(dir, `${name}-${split}-test.csv`), 'utf8')
    .trim()
    .split('\n');
  const names = head!.split(',');
  const test = lines.map((l) => l.split(',').map(Number));
  const F = names.length - 1;
  const session = await ort.InferenceSession.create(store.localPath(out.modelKey));
  // Fed by column: the model takes the columns it uses (constant pixels of digits are left out).
  const feeds = Object.fromEntries(
    session.inputNames.map((c) => {
      const j = names.indexOf(c);
      return [
        c,
        new ort.Tensor(
          'float32',
          Float32Array.from(test, (r) => r[j]!),
          [test.length, 1],
        ),
      ];
    }),
  );
  const res = await session.run(feeds);
  const labels = Array.from(res.label!.data as BigInt64Array, Number);
  // Integer classes 0..k-1 come out as themselves.
  return labels.filter((l, i) => l === test[i]![F]).length / test.length;
}

describe('training quality against scikit-learn', () => {
  // .ci/run installs python3-sklearn: a machine without it fails here, naming what is missing.
  it('has the reference (Debian python3-sklearn for /usr/bin/python3)', () => {
    expect(hasSklearn(), 'apt-get install python3-sklearn').toBe(true);
  });

  it('is within one point of StandardScaler + MLPClassifier((64,)) on digits, breast cancer and wine', async () => {
    const reference = JSON.parse(execFileSync(PYTHON, ['-c', REFERENCE, dir, SPLITS.join(',')], { encoding: 'utf8' })) as Record<string, number[]>;
    const store = new FsStore(path.join(dir, 'store'));
    const report: string[] = [];
    for (const name of DATASETS) {
      const accs: number[] = [];
      for (const s of SPLITS) accs.push(await ours(store, name, s));
      const sk = mean(reference[name]!);
      report.push(
        `${name}: modelq ${(100 * mean(accs)).toFixed(2)}% (${accs.map((a) => (100 * a).toFixed(1)).join(' ')}), scikit-learn ${(100 * sk).toFixed(2)}% (${reference[name]!.map((a) => (100 * a).toFixed(1)).join(' ')})`,
      );
      expect(mean(accs), report.at(-1)).toBeGreaterThanOrEqual(sk - 0.01);
    }
    console.log(`test accuracy, mean of stratified 75/25 splits ${SPLITS.join(',')}:\n${report.join('\n')}`);
  }, 600_000);
});

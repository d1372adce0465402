// Text training: fit time and test accuracy of a text classifier trained with the platform's
// defaults (TF-IDF uni+bigrams, linear head, TF.js trainer in this process, export and all) against
// scikit-learn's TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression, on the
// same stratified 80/20 split of the Debian sections corpus (test/fixtures/text), in the same run.
// Serving figures for the trained model (online requests/s, batch rows/s) plug in through
// `textBenchHooks`: each hook gets the exported model and the test rows after the comparison.
// MODELQ_BENCH_REPEATS interleaved rounds, medians (bench/lib/fair.ts); scikit-learn's fit here is
// single-threaded (liblinear/lbfgs on sparse input), so it has no thread settings to pick from.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { datasetKey, datasetRows, profileDataset } from '../core/datasets.ts';
import { resolveTrain } from '../core/jobs/train.ts';
import { FsStore } from '../core/storage/index.ts';
import { runTraining } from '../workers/training/child/run-training.ts';
import { interleave, ratioText } from './lib/fair.ts';

const CORPUS = path.join(import.meta.dirname, '../test/fixtures/text/debian-sections.csv');

/** What a serving benchmark gets: the exported model (input `description`, outputs `label`, `probabilities`) and the test rows. */
export interface TextBenchContext {
  model: Uint8Array;
  texts: string[];
  labels: string[];
}
/** Serving benchmarks of the trained text model (online, batch), run after the training figures. */
export const textBenchHooks: ((ctx: TextBenchContext) => Promise<unknown>)[] = [];

const SKLEARN = `
import csv, json, sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
src, out = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(src, encoding='utf-8')))
tr, te = train_test_split(rows, test_size=0.2, stratify=[r['section'] for r in rows], random_state=0)
for name, part in [('train', tr), ('test', te)]:
    with open('%s/%s.csv' % (out, name), 'w', newline='', encoding='utf-8') as f:
        w = csv.DictWriter(f, fieldnames=['description', 'section']); w.writeheader(); w.writerows(part)
fits = []
for _ in range(3):
    t = time.perf_counter()
    v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    m = LogisticRegression(max_iter=1000).fit(v.fit_transform([r['description'] for r in tr]), [r['section'] for r in tr])
    fits.append(time.perf_counter() - t)
acc = m.score(v.transform([r['description'] for r in te]), [r['section'] for r in te])
print(json.dumps({'accuracy': acc, 'fitSeconds': sorted(fits)[1], 'vocabulary': len(v.vocabulary_), 'train': len(tr), 'test': len(te)}))
`;

export async function benchTrainText() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-train-text-'));
  try {
    type Sk = { accuracy: number; fitSeconds: number; vocabulary: number; train: number; test: number };
    const runSk = (): Sk =>
      JSON.parse(execFileSync('/usr/bin/python3', ['-c', SKLEARN, CORPUS, dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim());
    let sk: Sk;
    try {
      sk = runSk();
    } catch (e) {
      console.log(
        `scikit-learn: not measured (${String((e as { stderr?: string }).stderr ?? e)
          .trim()
          .split('\n')
          .pop()}); apt-get install python3-sklearn`,
      );
      return {};
    }
    console.log(`train-text: Debian package descriptions by section, ${sk.train} training and ${sk.test} test rows (stratified 80/20, same split for both)`);

    const store = new FsStore(path.join(dir, 'store'));
    const id = `ds_${'0'.repeat(19)}1`;
    const key = datasetKey(id, 'csv');
    const put = await store.put(key, fs.readFileSync(path.join(dir, 'train.csv')));
    const ds = { id, name: 'bench', format: 'csv' as const, key, bytes: put.bytes, createdAt: '', ...(await profileDataset(await store.read(key), 'csv')) };
    const job = resolveTrain({ dataset: id, target: 'section', registerAs: 'bench', seed: 1 }, ds);
    // Rounds of scikit-learn then the trainer (bench/lib/fair.ts); the first round's scikit-learn run
    // is the one above, which also wrote the split. Figures are fits per second.
    let out!: Awaited<ReturnType<typeof runTraining>>;
    const rounds = await interleave({
      baseline: async (round) => 1 / (round === 0 ? sk : (sk = runSk())).fitSeconds,
      platform: async () => {
        const t0 = performance.now();
        out = await runTraining({ store, jobId: 'bench-text', job });
        return 1000 / (performance.now() - t0);
      },
    });
    const fit = 1 / rounds.medianPlatform;
    const skFit = 1 / rounds.medianBaseline;

    const texts: string[] = [];
    const labels: string[] = [];
    for await (const r of datasetRows(fs.createReadStream(path.join(dir, 'test.csv')), 'csv')) {
      texts.push(String(r.values.description ?? ''));
      labels.push(String(r.values.section));
    }
    const model = fs.readFileSync(store.localPath(out.modelKey));
    const session = await ort.InferenceSession.create(model);
    // The exported text input is [n] or [n, 1], as its exporter chose.
    const rank = (session.inputMetadata[0] as unknown as { shape: readonly unknown[] }).shape.length;
    const got = (await session.run({ description: new ort.Tensor('string', texts, rank === 2 ? [texts.length, 1] : [texts.length]) })).label!.data as string[];
    const accuracy = got.filter((l, i) => l === labels[i]).length / labels.length;
    const hp = job.hyperparameters;
    console.log(
      `modelq (defaults: ${hp.model.type} head, maxFeatures ${hp.text!.maxFeatures}, minDf ${hp.text!.minDf}, lr ${hp.learningRate}; ${out.epochsRun} epochs, best ${out.bestEpoch}; tfjs wasm, 1 thread): fit ${fit.toFixed(2)} s (vectorize, train, export; median of ${rounds.platform.length} rounds), test accuracy ${(100 * accuracy).toFixed(2)}%`,
    );
    console.log(
      `scikit-learn (TfidfVectorizer(1,2), sublinear_tf + LogisticRegression, ${sk.vocabulary} n-grams): fit ${skFit.toFixed(2)} s (median of ${rounds.baseline.length} rounds, each the median of 3 fits), test accuracy ${(100 * sk.accuracy).toFixed(2)}%`,
    );
    console.log(
      `speed modelq / scikit-learn: ${ratioText(rounds.ratio, rounds.ratios.length)} (fit time ${(1 / rounds.ratio).toFixed(2)}x scikit-learn's), accuracy ${(100 * (accuracy - sk.accuracy)).toFixed(2)} points`,
    );
    for (const hook of textBenchHooks) await hook({ model, texts, labels });
    return { fit, accuracy, sklearnFit: skFit, sklearnAccuracy: sk.accuracy, ratio: 1 / rounds.ratio };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await benchTrainText();

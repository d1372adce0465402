// Training on realistic tables (test/fixtures/tabular/tables.py: breast cancer, wine and diabetes
// from Debian's python3-sklearn, with named categories, gaps at random and by value, a site code and
// an id column): fit time and test score of the platform's model types (auto, the default; linear; gbdt; mlp)
// against scikit-learn's standard pipeline (imputation + scaling + one-hot + LogisticRegression /
// Ridge) and HistGradientBoosting on the same splits, in the same run. The platform trains in this
// process as the training child does (runTraining: load, encode, fit, export); its score is the
// exported model's, run in onnxruntime fed by column. Then online serving of one trained gbdt model:
// KServe `:predict` (one instance keyed by column) against `/v2` infer (one [1, 1] tensor per column),
// requests/s per client count, alternating. os.loadavg() before and after.
// Env: BENCH_TABULAR_SPLITS=0,1,2  BENCH_TABULAR_TABLES=clinic,cellar,diabetes  BENCH_SKLEARN_THREADS (default: scikit-learn's own)
//      BENCH_CLIENTS=1,16  BENCH_SECONDS=5  BENCH_WARMUP_SECONDS=1  BENCH_WORKERS=1  BENCH_TABULAR_SERVE=0 skips serving
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { datasetKey, profileDataset } from '../core/datasets.ts';
import { resolveTrain, type TrainRequest } from '../core/jobs/train.ts';
import { FsStore } from '../core/storage/index.ts';
import { makeTables, readCsv, TABLES, testScore } from '../test/fixtures/tabular/tables.ts';
import { runTraining } from '../workers/training/child/run-training.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { startPlatform } from './lib/platform.ts';

const MODELS: { label: string; model?: TrainRequest['model'] }[] = [
  { label: 'auto (default)' },
  { label: 'linear', model: { type: 'linear' } },
  { label: 'gbdt', model: { type: 'gbdt' } },
  { label: 'mlp', model: { type: 'mlp' } },
];
const envList = (k: string) => process.env[k]?.split(',').map((s) => s.trim());
const envNum = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const loadavg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

export interface TabularResult {
  scores: { table: string; model: string; score: number; fitSeconds: number }[];
  online?: { clients: number; predict: LoadResult; v2: LoadResult; ratio: number }[];
}

export async function benchTrainTabular(): Promise<TabularResult> {
  const splits = (envList('BENCH_TABULAR_SPLITS') ?? ['0', '1', '2']).map(Number);
  const tables = envList('BENCH_TABULAR_TABLES') ?? [...TABLES];
  console.log(`train-tabular: tables ${tables.join(',')}, splits ${splits.join(',')} (75/25); ${os.cpus().length} cpus; load average before ${loadavg()}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-tabular-'));
  try {
    const ref = makeTables(dir, splits, tables, envNum('BENCH_SKLEARN_THREADS'));
    const store = new FsStore(path.join(dir, 'store'));
    const scores: TabularResult['scores'] = [];
    let served: { bytes: Uint8Array; numeric: Set<string>; inputs: string[]; table: string } | undefined;
    console.log('\n| table | rows | metric | model | test score | fit s (mean) |');
    console.log('|---|---|---|---|---|---|');
    for (const table of tables) {
      const r = ref[table]!;
      const metric = r.task === 'classification' ? 'accuracy' : 'R^2';
      // Per split, every platform model then the references' figures from the same split files.
      const per = new Map<string, { score: number[]; fit: number[]; kept: string[] }>();
      const add = (k: string, score: number, fit: number, kept?: string) => {
        const e = per.get(k) ?? { score: [], fit: [], kept: [] };
        e.score.push(score);
        e.fit.push(fit);
        if (kept) e.kept.push(kept);
        per.set(k, e);
      };
      for (const s of splits) {
        const id = `ds_${table.slice(0, 8).padEnd(8, '0')}${String(s).padStart(12, '0')}`;
        const key = datasetKey(id, 'csv');
        const put = await store.put(key, fs.readFileSync(path.join(dir, `${table}-${s}-train.csv`)));
        const ds = { id, name: table, format: 'csv' as const, key, bytes: put.bytes, createdAt: '', ...(await profileDataset(await store.read(key), 'csv')) };
        for (const m of MODELS) {
          const job = resolveTrain({ dataset: id, target: r.target, registerAs: 'bench', seed: s, ...(m.model ? { model: m.model } : {}) }, ds);
          const t0 = performance.now();
          const out = await runTraining({ store, jobId: `${table}-${s}-${m.label.split(' ')[0]}`, job });
          const fit = (performance.now() - t0) / 1000;
          const ft = job.hyperparameters.featureTypes ?? {};
          const numeric = new Set(job.hyperparameters.features.filter((f) => (ft[f] ?? 'numeric') === 'numeric'));
          const bytes = fs.readFileSync(store.localPath(out.modelKey));
          add(
            m.label + (out.candidates ? ` -> ${out.modelType}` : ''),
            await testScore(bytes, numeric, path.join(dir, `${table}-${s}-test.csv`), r.target),
            fit,
          );
          if (!served && m.model?.type === 'gbdt') served = { bytes, numeric, inputs: job.hyperparameters.features, table: `${table}-${s}` };
        }
        const sk = r.splits.find((x) => x.split === s)!;
        add('scikit-learn pipeline', sk.linear, sk.linearFit);
        add('HistGradientBoosting', sk.hgb, sk.hgbFit);
      }
      for (const [model, e] of per) {
        scores.push({ table, model, score: mean(e.score), fitSeconds: mean(e.fit) });
        const kept = e.kept.length ? ` (kept ${e.kept.join(',')})` : '';
        console.log(`| ${table} | ${r.rows} | ${metric} | ${model}${kept} | ${mean(e.score).toFixed(3)} | ${mean(e.fit).toFixed(2)} |`);
      }
    }
    const online = process.env.BENCH_TABULAR_SERVE === '0' || !served ? undefined : await serve(served, dir);
    return { scores, ...(online ? { online } : {}) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`load average after ${loadavg()}`);
  }
}

/** `:predict` against `/v2` for one row of the served table's test CSV, alternating per client count. */
async function serve(
  m: { bytes: Uint8Array; numeric: Set<string>; inputs: string[]; table: string },
  dir: string,
): Promise<NonNullable<TabularResult['online']>> {
  const clients = (envList('BENCH_CLIENTS') ?? ['1', '16']).map(Number);
  const seconds = envNum('BENCH_SECONDS') ?? 5;
  const warmupSeconds = envNum('BENCH_WARMUP_SECONDS') ?? 1;
  const { names, rows } = readCsv(path.join(dir, `${m.table}-test.csv`));
  const row = rows[0]!;
  const inputs = m.inputs;
  const value = (c: string) => {
    const v = row[names.indexOf(c)]!;
    return m.numeric.has(c) ? (v === '' ? null : Number(v)) : v;
  };
  const predictBody = JSON.stringify({ instances: [Object.fromEntries(inputs.map((c) => [c, value(c)]))] });
  const v2Body = JSON.stringify({
    inputs: inputs.map((c) =>
      m.numeric.has(c)
        ? { name: c, datatype: 'FP32', shape: [1, 1], data: [value(c) ?? 'NaN'] }
        : { name: c, datatype: 'BYTES', shape: [1, 1], data: [value(c)] },
    ),
  });
  const p = await startPlatform({ workers: envNum('BENCH_WORKERS') ?? 1 });
  try {
    await p.register('bench-tabular', m.bytes);
    const predictUrl = `${p.url}/v1/models/bench-tabular:predict`;
    const v2Url = `${p.url}/v2/models/bench-tabular/infer`;
    for (const [url, body] of [
      [predictUrl, predictBody],
      [v2Url, v2Body],
    ] as const) {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (!res.ok) throw new Error(`priming ${url}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    }
    const load = (url: string, body: string, concurrency: number) =>
      runLoad({ url, body, concurrency, durationMs: seconds * 1000, warmupMs: warmupSeconds * 1000 });
    const out: NonNullable<TabularResult['online']> = [];
    console.log(`\nonline, gbdt model of ${m.table} (${inputs.length} column inputs), one row per request, ${seconds} s + ${warmupSeconds} s per run`);
    console.log('| clients | :predict req/s | p50 ms | p99 ms | errors | /v2 req/s | p50 ms | p99 ms | errors | :predict / v2 |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const c of clients) {
      const predict = await load(predictUrl, predictBody, c);
      const v2 = await load(v2Url, v2Body, c);
      const ratio = v2.rps > 0 ? predict.rps / v2.rps : 0;
      out.push({ clients: c, predict, v2, ratio });
      const f = (l: LoadResult) => `${l.rps.toFixed(0)} | ${l.p50Ms.toFixed(1)} | ${l.p99Ms.toFixed(1)} | ${l.errors}`;
      console.log(`| ${c} | ${f(predict)} | ${f(v2)} | ${ratio.toFixed(2)}x |`);
    }
    return out;
  } finally {
    await p.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await benchTrainTabular();

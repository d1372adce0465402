// Explanations and drift sampling on the platform: rows/s of explained vs plain online inference for
// an MLP 20-256-1024-1024-10 with 50 background rows, and online requests/s of a version whose
// requests are all sampled into its drift window vs the same model without a reference (not sampled);
// and rows/s of an explained batch vs a plain batch (BENCH_EXPLAIN_BATCH_ROWS, BENCH_EXPLAIN_PLAIN_BATCH_ROWS).
// Env: BENCH_SECONDS=5  BENCH_WARMUP_SECONDS=1  BENCH_EXPLAIN_SAMPLES=2  BENCH_EXPLAIN_CLIENTS=2
//      BENCH_CLIENTS=64 (drift runs)  BENCH_WORKERS=1
import { buildMlp, rng } from '../workers/onnx/builder.ts';
import { evaluationsPerRow } from '../core/jobs/explain.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { startPlatform } from './lib/platform.ts';
import { interleave, ratioText } from './lib/fair.ts';

const FEATURES = 20;
const BACKGROUND = 50;
const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);

const rows = (n: number, seed: number) => {
  const r = rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: FEATURES }, () => r() * 2 - 1));
};
const body = (parameters?: Record<string, unknown>) =>
  JSON.stringify({ ...(parameters ? { parameters } : {}), inputs: [{ name: 'input', datatype: 'FP32', shape: [1, FEATURES], data: rows(1, 5)[0] }] });

async function put(url: string, value: unknown) {
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
  if (!res.ok) throw new Error(`PUT ${url}: HTTP ${res.status} ${await res.text()}`);
}

async function prime(url: string, b: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: b, signal: AbortSignal.timeout(120_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`priming ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
}

const fmt = (r: LoadResult) =>
  `${r.rps.toFixed(1).padStart(9)} req/s  p50 ${r.p50Ms.toFixed(1).padStart(7)} ms  p99 ${r.p99Ms.toFixed(1).padStart(7)} ms  errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}`;

export async function benchExplain() {
  const seconds = env('BENCH_SECONDS', 5);
  const warmup = env('BENCH_WARMUP_SECONDS', 1);
  const samples = env('BENCH_EXPLAIN_SAMPLES', 2);
  const explainClients = env('BENCH_EXPLAIN_CLIENTS', 2);
  const clients = env('BENCH_CLIENTS', 64);
  // Every request of a version with a reference is sampled here: the worst case of drift's cost.
  process.env.MODELQ_DRIFT_SAMPLE = '1';
  // ...and the plain version never gets a reference from its first rows (it stays unsampled).
  process.env.MODELQ_DRIFT_REFERENCE_ROWS = '0';
  const p = await startPlatform({ workers: env('BENCH_WORKERS', 1) });
  try {
    const model = buildMlp({ sizes: [FEATURES, 256, 1024, 1024, 10], seed: 3, softmax: true });
    for (const name of ['plain', 'watched']) await p.register(name, model);
    await put(`${p.url}/v1/models/plain/versions/1/background`, { rows: rows(BACKGROUND, 9) });
    await put(`${p.url}/v1/models/watched/versions/1/reference`, { rows: rows(2000, 11) });
    const load = (name: string, b: string, c: number) =>
      runLoad({ url: `${p.url}/v2/models/${name}/infer`, body: b, concurrency: c, durationMs: seconds * 1000, warmupMs: warmup * 1000 });

    const explained = body({ explain: true, explainSamples: samples });
    await prime(`${p.url}/v2/models/plain/infer`, explained);
    const evals = evaluationsPerRow(samples, BACKGROUND, FEATURES) + BACKGROUND;
    console.log(
      `\nexplain: MLP ${FEATURES}-256-1024-1024-10, ${BACKGROUND} background rows, ${samples} permutations per row: ${evals} model evaluations per explained row; 1 row per request`,
    );
    // Rounds of plain then explained (bench/lib/fair.ts): medians and the median ratio.
    const online = await interleave({
      baseline: async () => {
        const r = await load('plain', body(), explainClients);
        console.log(`  plain      (${explainClients} clients) ${fmt(r)}`);
        return r.rps;
      },
      platform: async () => {
        const r = await load('plain', explained, explainClients);
        console.log(`  explained  (${explainClients} clients) ${fmt(r)}`);
        return r.rps;
      },
    });
    const plainFull = await load('plain', body(), clients);
    console.log(`  plain      (${clients} clients) ${fmt(plainFull)}`);
    console.log(
      `  explained/plain rows/s: ${ratioText(online.ratio, online.ratios.length, 4)} at ${explainClients} clients, ${(online.medianPlatform / plainFull.rps).toFixed(5)}x of plain at ${clients} clients (dynamically batched)`,
    );
    console.log(
      `  model evaluations/s while explaining: ${(online.medianPlatform * evals).toFixed(0)} (plain at ${clients} clients: ${plainFull.rps.toFixed(0)} rows/s)`,
    );

    // Batches: rows/s of an explained batch vs a plain one of the same model, each timed from submit to completed.
    const plainRows = env('BENCH_EXPLAIN_PLAIN_BATCH_ROWS', 20_000);
    const explainedRows = env('BENCH_EXPLAIN_BATCH_ROWS', 400);
    const batch = async (n: number, query: string) => {
      const text = rows(n, 13)
        .map((r) => JSON.stringify({ input: r }))
        .join('\n');
      const t0 = performance.now();
      const res = await fetch(`${p.url}/v1/batches?model=plain&chunkRows=${Math.max(50, Math.ceil(n / 8))}${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body: text,
      });
      const { id } = (await res.json()) as { id: string };
      for (;;) {
        const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string };
        if (v.status === 'completed') break;
        if (v.status === 'failed' || v.status === 'cancelled') throw new Error(`batch ${id} ${v.status}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return n / ((performance.now() - t0) / 1000);
    };
    const batches = await interleave({
      baseline: () => batch(plainRows, ''),
      platform: () => batch(explainedRows, `&explain=true&explainSamples=${samples}`),
    });
    const plainBatch = batches.medianBaseline;
    const explainedBatch = batches.medianPlatform;
    console.log(`\nbatches (JSONL, chunks of n/8 rows):`);
    console.log(`  plain      ${plainRows} rows: ${plainBatch.toFixed(0).padStart(8)} rows/s`);
    console.log(
      `  explained  ${explainedRows} rows: ${explainedBatch.toFixed(1).padStart(8)} rows/s (${(explainedBatch * evals).toFixed(0)} model evaluations/s)`,
    );
    console.log(`  explained/plain batch rows/s: ${ratioText(batches.ratio, batches.ratios.length, 5)} (rows/s above are medians)`);

    await prime(`${p.url}/v2/models/watched/infer`, body());
    console.log(`\ndrift sampling: every request sampled (MODELQ_DRIFT_SAMPLE=1), ${clients} clients, alternating runs`);
    const run = async (name: 'plain' | 'watched') => {
      const r = await load(name, body(), clients);
      console.log(`  ${name.padEnd(8)} ${fmt(r)}`);
      return r.rps;
    };
    const drift = await interleave({ baseline: () => run('plain'), platform: () => run('watched') });
    console.log(`  watched/plain requests/s: ${ratioText(drift.ratio, drift.ratios.length, 3)}`);
  } finally {
    await p.stop();
  }
}

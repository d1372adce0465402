// Serving a text model: online requests/s for single sentences (a BYTES tensor of one string per
// request, REST JSON, closed-loop clients) and batch rows/s (JSONL rows {"text": ...}, submit to
// completed), each against a numeric baseline measured in the same run on the same platform: an MLP
// with the text model's parameter count over 64 float features, one row per request or line. The
// runs alternate (numeric, then text, per client count, MODELQ_BENCH_REPEATS rounds; medians shown,
// bench/lib/fair.ts), so load drift on a shared machine hits both.
// Given no model, it serves the fixture text classifier (StringNormalizer -> Tokenizer ->
// TfIdfVectorizer -> MLP head) with a 5,000-word vocabulary; `npm run bench train-text` passes the
// model it trained and its corpus.
// Env: BENCH_CLIENTS=1,16,64  BENCH_SECONDS=5  BENCH_WARMUP_SECONDS=1  BENCH_WORKERS=1  BENCH_TEXT_ROWS=50000
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { textClassifier, textSentences } from '../test/fixtures/text-models.ts';
import { buildMlp } from '../workers/onnx/builder.ts';
import { parameterCount } from '../workers/onnx/graph.ts';
import { decodeModel } from '../workers/onnx/proto.ts';
import { modelInputs } from '../workers/onnx/sample-inputs.ts';
import { postFile, writeInput } from './lib/batch-input.ts';
import { interleave, ratioText } from './lib/fair.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { startPlatform, type Platform } from './lib/platform.ts';

export interface TextServeOptions {
  /** The text model: one string input ([N] or [N, 1]). Default: the fixture classifier, 5,000 words. */
  model?: Uint8Array;
  /** Sentences for the batch rows (cycled) and the online request (the first). Default: 1,000 fixture sentences. */
  sentences?: string[];
  /** Concurrent clients per online run. Default BENCH_CLIENTS or [1, 16, 64]. */
  clients?: number[];
  /** Measured seconds per online run. Default BENCH_SECONDS or 5. */
  seconds?: number;
  /** Unmeasured seconds of load before each run. Default BENCH_WARMUP_SECONDS or 1. */
  warmupSeconds?: number;
  /** Rows of each batch file. Default BENCH_TEXT_ROWS or 50,000. */
  rows?: number;
  /** Worker processes of the platform started here. Default BENCH_WORKERS or 1. */
  workers?: number;
  /** A platform already running (its caller stops it); else one is started and stopped here. */
  platform?: Platform;
}

export interface TextServeResult {
  input: { name: string; rank: number };
  params: { text: number; numeric: number };
  online: { clients: number; text: LoadResult; numeric: LoadResult; ratio: number; rounds: number }[];
  batch: { rows: number; text: BatchRate; numeric: BatchRate; ratio: number };
}

interface BatchRate {
  rowsPerSecond: number;
  seconds: number;
  completed: number;
  status: string;
}

const FEATURES = 64;
const envNum = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
const envList = (k: string) =>
  process.env[k]
    ?.split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);

/** An MLP over FEATURES floats with about `params` parameters and `classes` outputs (one hidden layer). */
export function numericTwin(params: number, classes: number): Uint8Array {
  const hidden = Math.max(8, Math.round((params - classes) / (FEATURES + 1 + classes)));
  return buildMlp({ sizes: [FEATURES, hidden, classes], seed: 3, softmax: true });
}

/** Submit a JSONL file, wait for the end: rows/s from submit to completed. */
async function batchRun(p: Platform, model: string, file: string, rows: number): Promise<BatchRate> {
  const t = performance.now();
  const res = await postFile(`${p.url}/v1/batches?model=${model}`, file);
  if (res.status !== 202) throw new Error(`submit ${model}: HTTP ${res.status} ${res.body}`);
  const { id } = JSON.parse(res.body) as { id: string };
  let v: { status: string; requestCounts: { completed: number } };
  for (;;) {
    v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as typeof v;
    if (['completed', 'failed', 'cancelled'].includes(v.status)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const seconds = (performance.now() - t) / 1000;
  if (v.status !== 'completed' || v.requestCounts.completed !== rows)
    throw new Error(`batch ${model}: ${v.status}, ${v.requestCounts.completed} of ${rows} rows`);
  return { rowsPerSecond: rows / seconds, seconds, completed: v.requestCounts.completed, status: v.status };
}

async function prime(url: string, body: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`priming ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
}

const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);

export async function benchTextServe(opts: TextServeOptions = {}): Promise<TextServeResult> {
  const model = opts.model ?? textClassifier({ padVocabulary: 5000, hidden: 64 });
  const sentences = opts.sentences?.length ? opts.sentences : textSentences(1000).map((r) => r.text);
  const clients = [...new Set(opts.clients ?? envList('BENCH_CLIENTS') ?? [1, 16, 64])];
  const seconds = opts.seconds ?? envNum('BENCH_SECONDS') ?? 5;
  const warmupSeconds = opts.warmupSeconds ?? envNum('BENCH_WARMUP_SECONDS') ?? 1;
  const rows = opts.rows ?? envNum('BENCH_TEXT_ROWS') ?? 50_000;

  const inputs = modelInputs(decodeModel(model));
  const strings = inputs.filter((i) => i.elemType === 8);
  if (inputs.length !== 1 || strings.length !== 1 || inputs[0]!.shape.length > 2)
    throw new Error(`text-serve takes a model with one string input [N] or [N, 1]; this one takes ${inputs.map((i) => i.name).join(', ')}`);
  const input = { name: inputs[0]!.name, rank: inputs[0]!.shape.length };
  const params = parameterCount(model);
  // The classes: the width of the model's first [N, C] float output, else 2.
  const classes = (() => {
    const g = decodeModel(model).graph!;
    for (const o of g.output ?? []) {
      const dims = o.type?.tensorType?.shape?.dim ?? [];
      const c = Number(dims[1]?.dimValue ?? 0);
      if (o.type?.tensorType?.elemType === 1 && dims.length === 2 && c > 1) return c;
    }
    return 2;
  })();
  const twin = numericTwin(params, classes);
  console.log(
    `text-serve: text model ${(model.length / 1024).toFixed(0)} KiB, ${params} parameters, input "${input.name}" rank ${input.rank}; ` +
      `numeric twin MLP ${FEATURES} features, ${parameterCount(twin)} parameters; clients ${clients.join(',')}, ${seconds} s + ${warmupSeconds} s per run; ` +
      `batch ${rows} rows; ${os.cpus().length} cpus`,
  );

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-text-'));
  const own = opts.platform ? undefined : await startPlatform({ workers: opts.workers ?? envNum('BENCH_WORKERS') ?? 1 });
  const p = opts.platform ?? own!;
  try {
    await p.register('bench-text', model);
    await p.register('bench-numeric', twin);
    const one = sentences[0]!;
    const textBody = JSON.stringify({ inputs: [{ name: input.name, datatype: 'BYTES', shape: input.rank === 2 ? [1, 1] : [1], data: [one] }] });
    const numericBody = JSON.stringify({
      inputs: [{ name: 'input', datatype: 'FP32', shape: [1, FEATURES], data: Array.from({ length: FEATURES }, (_, i) => ((i * 37) % 100) / 100) }],
    });
    const textUrl = `${p.url}/v2/models/bench-text/infer`;
    const numericUrl = `${p.url}/v2/models/bench-numeric/infer`;
    await prime(textUrl, textBody);
    await prime(numericUrl, numericBody);
    const load = (url: string, body: string, concurrency: number) =>
      runLoad({ url, body, concurrency, durationMs: seconds * 1000, warmupMs: warmupSeconds * 1000 });
    const online: TextServeResult['online'] = [];
    // Rounds of numeric then text (bench/lib/fair.ts); the median round of each and the median ratio.
    const medianRun = <T>(xs: T[], by: (x: T) => number) => [...xs].sort((a, b) => by(a) - by(b))[(xs.length - 1) >> 1]!;
    const kept = <T>(xs: T[], x: T) => (xs.push(x), x);
    for (const c of clients) {
      const runs = { text: [] as LoadResult[], numeric: [] as LoadResult[] };
      const r = await interleave({
        baseline: async () => kept(runs.numeric, await load(numericUrl, numericBody, c)).rps,
        platform: async () => kept(runs.text, await load(textUrl, textBody, c)).rps,
      });
      online.push({
        clients: c,
        text: medianRun(runs.text, (x) => x.rps),
        numeric: medianRun(runs.numeric, (x) => x.rps),
        ratio: r.ratio,
        rounds: r.ratios.length,
      });
    }

    const textFile = path.join(dir, 'text.jsonl');
    const numericFile = path.join(dir, 'numeric.jsonl');
    fs.writeFileSync(
      textFile,
      Array.from({ length: rows }, (_, i) => JSON.stringify({ id: i, [input.name]: sentences[i % sentences.length] })).join('\n') + '\n',
    );
    writeInput(numericFile, rows, FEATURES);
    const batches = { text: [] as BatchRate[], numeric: [] as BatchRate[] };
    const batchRatio = await interleave({
      baseline: async () => kept(batches.numeric, await batchRun(p, 'bench-numeric', numericFile, rows)).rowsPerSecond,
      platform: async () => kept(batches.text, await batchRun(p, 'bench-text', textFile, rows)).rowsPerSecond,
    });
    const textBatch = medianRun(batches.text, (x) => x.rowsPerSecond);
    const numericBatch = medianRun(batches.numeric, (x) => x.rowsPerSecond);
    const result: TextServeResult = {
      input,
      params: { text: params, numeric: parameterCount(twin) },
      online,
      batch: { rows, text: textBatch, numeric: numericBatch, ratio: batchRatio.ratio },
    };

    console.log('\n| clients | text req/s | p50 ms | p99 ms | errors | numeric req/s | p50 ms | p99 ms | errors | text/numeric |');
    console.log('|---|---|---|---|---|---|---|---|---|---|');
    for (const r of online)
      console.log(
        `| ${r.clients} | ${f0(r.text.rps)} | ${f1(r.text.p50Ms)} | ${f1(r.text.p99Ms)} | ${r.text.errors} | ${f0(r.numeric.rps)} | ${f1(r.numeric.p50Ms)} | ${f1(r.numeric.p99Ms)} | ${r.numeric.errors} | ${ratioText(r.ratio, r.rounds)} |`,
      );
    console.log(
      `batch (JSONL, ${rows} rows, submit to completed): text ${f0(textBatch.rowsPerSecond)} rows/s (${f1(textBatch.seconds)} s), ` +
        `numeric ${f0(numericBatch.rowsPerSecond)} rows/s (${f1(numericBatch.seconds)} s): text/numeric ${ratioText(result.batch.ratio, batchRatio.ratios.length)} (median rounds shown)`,
    );
    return result;
  } finally {
    await own?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

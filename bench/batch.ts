// Batch scoring: 200,000 rows x 256 features through an MLP 256-1024-1024-10, submit to completed
// output downloaded, against bench/lib/plain-batch.ts (one process reading the same JSONL,
// onnxruntime in batches with the best thread setting, writing JSONL) on the same cores.
// Env: BENCH_BATCH_ROWS=200000  BENCH_BATCH_WORKERS=2
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { buildMlp } from '../workers/onnx/builder.ts';
import { spawnNode, waitForLine } from './lib/child.ts';
import { startPlatform } from './lib/platform.ts';
import { postFile, writeInput } from './lib/batch-input.ts';

const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 200_000);
const WORKERS = Number(process.env.BENCH_BATCH_WORKERS ?? 2);
const F = 256;



async function plain(model: string, input: string, output: string, threads: number) {
  const child = spawnNode({ args: ['--import', 'tsx', 'bench/lib/plain-batch.ts', '--model', model, '--input', input, '--output', output, '--threads', String(threads)] });
  const [line] = await waitForLine(child, /^\{"rows".*\}$/, 600_000);
  return JSON.parse(line) as { rows: number; seconds: number; rowsPerSecond: number };
}

export async function benchBatch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-batch-'));
  try {
    const modelFile = path.join(dir, 'mlp.onnx');
    const bytes = buildMlp({ sizes: [F, 1024, 1024, 10], seed: 1 });
    fs.writeFileSync(modelFile, bytes);
    const input = path.join(dir, 'input.jsonl');
    let t = performance.now();
    writeInput(input, ROWS, F);
    console.log(`batch: ${ROWS} rows x ${F} features, ${(fs.statSync(input).size / 1024 ** 2).toFixed(0)} MiB JSONL (made in ${((performance.now() - t) / 1000).toFixed(1)} s), ${os.availableParallelism()} cpus`);

    const plains = [];
    for (const threads of [1, os.availableParallelism()]) {
      const r = await plain(modelFile, input, path.join(dir, `plain-${threads}.jsonl`), threads);
      plains.push({ threads, ...r });
      console.log(`plain script, ${threads} onnxruntime thread(s): ${r.rowsPerSecond.toFixed(0)} rows/s (${r.seconds.toFixed(1)} s)`);
    }
    const best = plains.reduce((a, b) => (b.rowsPerSecond > a.rowsPerSecond ? b : a));

    process.env.MODELQ_ENGINE_THREADS ??= '1';
    const platform = await startPlatform({ workers: WORKERS });
    try {
      await platform.register('bench', bytes);
      t = performance.now();
      const res = await postFile(`${platform.url}/v1/batches?model=bench`, input);
      if (res.status !== 202) throw new Error(`submit: HTTP ${res.status} ${res.body}`);
      const { id } = JSON.parse(res.body) as { id: string };
      const uploaded = performance.now();
      let v: { status: string; requestCounts: { completed: number } };
      for (;;) {
        v = (await (await fetch(`${platform.url}/v1/batches/${id}`)).json()) as typeof v;
        if (['completed', 'failed', 'cancelled'].includes(v.status)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const scored = performance.now();
      const outFile = path.join(dir, 'platform.jsonl');
      const out = await fetch(`${platform.url}/v1/batches/${id}/output`);
      await pipeline(Readable.fromWeb(out.body as never), fs.createWriteStream(outFile));
      const seconds = (performance.now() - t) / 1000;
      const rps = ROWS / seconds;
      console.log(`platform, ${WORKERS} worker processes x ${process.env.MODELQ_ENGINE_THREADS} engine thread: ${rps.toFixed(0)} rows/s (${seconds.toFixed(1)} s: upload ${((uploaded - t) / 1000).toFixed(1)} s, scoring ${((scored - uploaded) / 1000).toFixed(1)} s, download ${((performance.now() - scored) / 1000).toFixed(1)} s), status ${v.status}, ${v.requestCounts.completed} rows`);
      console.log(`ratio platform / best plain script (${best.threads} threads): ${(rps / best.rowsPerSecond).toFixed(2)}x`);
    } finally {
      await platform.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

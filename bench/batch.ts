// Batch scoring: 200,000 rows x 256 features through an MLP 256-1024-1024-10, upload to completed
// output downloaded, with the platform's default settings, against baselines measured in the same
// run on the same cores, rounds of baseline then platform (MODELQ_BENCH_REPEATS, medians reported;
// bench/lib/fair.ts): bench/lib/plain-batch.ts (one process reading the JSONL, onnxruntime in
// batches, writing JSONL; best of 1 and 2 threads) for JSONL, and bench/lib/raw-onnx.ts (session.run
// on ready-made tensors of 512 rows; best of 1 and 2 threads) for Parquet. Also: the peak RSS of
// the producer and workers, and where an engine thread's time goes (bench/lib/segment-profile.ts,
// bench/lib/row-group-profile.ts).
// Env: BENCH_BATCH_ROWS=200000. BENCH_PREFIX_ROWS=2000000 runs only the large prefix by reference
// (bench/batch-ref.ts benchPrefix: BENCH_PREFIX_PARTS Parquet objects, producer and worker RSS).
// BENCH_PROFILE_UPLOAD=jsonl|parquet [BENCH_CPU_PROF=<dir>]: one platform run of that upload with CPU
// profiles of each process's main thread and CPU seconds per 1000 rows per process (no baselines).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { loadConfig } from '../core/config.ts';
import { buildMlp } from '../workers/onnx/builder.ts';
import { benchBatchRef, benchPrefix, topSelfTime } from './batch-ref.ts';
import { postFile, writeInput, writeParquetInput } from './lib/batch-input.ts';
import { spawnNode, waitForLine } from './lib/child.ts';
import { bestOfThreads, interleave, ratioText } from './lib/fair.ts';
import { startPlatform } from './lib/platform.ts';
import { profileRowGroup } from './lib/row-group-profile.ts';
import { profileSegments } from './lib/segment-profile.ts';

const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 200_000);
const F = 256;
const MiB = 1024 * 1024;

type Rate = { rows: number; seconds: number; rowsPerSecond: number; cpuSeconds: number };

async function child(script: string, args: string[]): Promise<Rate> {
  const c = spawnNode({ args: ['--import', 'tsx', script, ...args] });
  const [line] = await waitForLine(c, /^\{"rows".*\}$/, 900_000);
  return JSON.parse(line) as Rate;
}

/** Submit, wait for the end, download the output: rows/s over the whole, and the parts. */
async function platformRun(bytes: Uint8Array, input: string, contentType: string, outFormat: string, outFile: string, prof?: string) {
  // Parquet in, Parquet out: the workers write the output parts as Parquet (outputFormat), so the
  // download sends them joined under one footer instead of converting JSONL in the producer.
  const query = contentType === 'application/vnd.apache.parquet' ? `&outputFormat=${outFormat}` : '';
  const cfg = loadConfig();
  const saved = { ...process.env };
  if (prof) {
    // As bench/batch-ref.ts does: a preload profiles each platform process's main thread.
    fs.mkdirSync(prof, { recursive: true });
    process.env.BENCH_CPU_PROF = path.resolve(prof);
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${path.resolve(import.meta.dirname, 'cpu-prof-preload.mjs')}`.trim();
  }
  const platform = await startPlatform({ workers: cfg.MODELQ_WORKERS }).finally(() => (process.env = saved));
  const micros = () => Number(process.hrtime.bigint() / 1000n);
  let span: [number, number] = [0, 0];
  try {
    await platform.register('bench', bytes);
    const cpu0 = platform.cpuSeconds();
    const byProcess0 = platform.cpuByProcess();
    const byThread0 = prof ? platform.cpuByThread() : undefined;
    span = [micros(), 0];
    const t = performance.now();
    const res = await postFile(`${platform.url}/v1/batches?model=bench${query}`, input, contentType);
    if (res.status !== 202) throw new Error(`submit: HTTP ${res.status} ${res.body}`);
    const { id } = JSON.parse(res.body) as { id: string };
    const uploaded = performance.now();
    let v: { status: string; requestCounts: { completed: number } };
    for (;;) {
      v = (await (await fetch(`${platform.url}/v1/batches/${id}`)).json()) as typeof v;
      if (['completed', 'failed', 'cancelled'].includes(v.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const scored = performance.now();
    const out = await fetch(`${platform.url}/v1/batches/${id}/output?format=${outFormat}`);
    await pipeline(Readable.fromWeb(out.body as never), fs.createWriteStream(outFile));
    const seconds = (performance.now() - t) / 1000;
    span[1] = micros();
    const byProcess1 = platform.cpuByProcess();
    if (byThread0) {
      // Where each process's CPU went by thread: the main thread, then the others by most (engine
      // threads, libuv's pool, V8's GC helpers: Node names them all "node").
      const t1 = platform.cpuByThread();
      const show = (name: string, a: Map<number, number>, b: Map<number, number>) => {
        const d = [...b].map(([tid, c]) => [tid, c - (a.get(tid) ?? 0)] as const).filter(([, c]) => c > 0);
        const main = d.find(([tid]) => tid === -1)?.[1] ?? 0;
        const rest = d.filter(([tid]) => tid !== -1).sort((x, y) => y[1] - x[1]);
        const per1k = (c: number) => ((c / ROWS) * 1000).toFixed(4);
        console.log(
          `CPU-s per 1000 rows by thread, ${name}: main ${per1k(main)}; others ${rest
            .slice(0, 4)
            .map(([, c]) => per1k(c))
            .join(', ')}${rest.length > 4 ? `, ${rest.length - 4} more ${per1k(rest.slice(4).reduce((x, [, c]) => x + c, 0))}` : ''}`,
        );
      };
      show('producer', byThread0.producer, t1.producer);
      t1.workers.forEach((w, i) => show(`worker ${i}`, byThread0.workers[i] ?? new Map(), w));
    }
    return {
      cpuByProcess: { producer: byProcess1.producer - byProcess0.producer, workers: byProcess1.workers.map((c, i) => c - (byProcess0.workers[i] ?? 0)) },
      rowsPerSecond: ROWS / seconds,
      seconds,
      status: v.status,
      completed: v.requestCounts.completed,
      rss: platform.peakRss(),
      cpuSeconds: platform.cpuSeconds() - cpu0,
      upload: (uploaded - t) / 1000,
      scoring: (scored - uploaded) / 1000,
      download: (performance.now() - scored) / 1000,
    };
  } finally {
    await platform.stop();
    if (prof) {
      for (const f of fs.readdirSync(prof).filter((x) => x.endsWith('.cpuprofile'))) {
        const r = topSelfTime(path.join(prof, f), span);
        console.log(`cpu profile ${f}, main thread busy ${(r.busy * 100).toFixed(0)}% of the run (upload to download); of that:\n  ${r.top.join('\n  ')}`);
      }
    }
  }
}

/**
 * BENCH_PROFILE_UPLOAD=jsonl|parquet (with BENCH_CPU_PROF=<dir>): one platform run of that upload,
 * no baselines; prints CPU seconds per 1000 rows per process and where each main thread spent its time.
 */
async function profileUpload(bytes: Uint8Array, input: string, pqInput: string, dir: string, which: string, prof: string) {
  const pq = which === 'parquet';
  const r = await platformRun(
    bytes,
    pq ? pqInput : input,
    pq ? 'application/vnd.apache.parquet' : 'application/x-ndjson',
    pq ? 'parquet' : 'jsonl',
    path.join(dir, 'out'),
    prof,
  );
  const per1k = (cpu: number) => `${((cpu / ROWS) * 1000).toFixed(4)}`;
  console.log(
    `profile ${which} upload: ${r.status} ${r.completed} rows in ${r.seconds.toFixed(1)} s (upload ${r.upload.toFixed(1)} s, scoring ${r.scoring.toFixed(1)} s, download ${r.download.toFixed(1)} s); CPU-s per 1000 rows: producer ${per1k(r.cpuByProcess.producer)}, workers ${r.cpuByProcess.workers.map(per1k).join(', ')} (all threads)`,
  );
}

const mib = (b: number) => `${(b / MiB).toFixed(0)} MiB`;

export async function benchBatch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-batch-'));
  try {
    const prefixRows = Number(process.env.BENCH_PREFIX_ROWS ?? 0);
    if (prefixRows > 0) {
      await benchPrefix(buildMlp({ sizes: [F, 1024, 1024, 10], seed: 1 }), dir, prefixRows, F, loadConfig().MODELQ_WORKERS, writeParquetInput);
      return;
    }
    const modelFile = path.join(dir, 'mlp.onnx');
    const bytes = buildMlp({ sizes: [F, 1024, 1024, 10], seed: 1 });
    fs.writeFileSync(modelFile, bytes);
    const input = path.join(dir, 'input.jsonl');
    const pqInput = path.join(dir, 'input.parquet');
    const t = performance.now();
    writeInput(input, ROWS, F);
    await writeParquetInput(pqInput, ROWS, F);
    const cfg = loadConfig();
    if (process.env.BENCH_PROFILE_UPLOAD) {
      await profileUpload(bytes, input, pqInput, dir, process.env.BENCH_PROFILE_UPLOAD, process.env.BENCH_CPU_PROF ?? path.join(dir, 'prof'));
      return;
    }
    console.log(
      `batch: ${ROWS} rows x ${F} features, ${mib(fs.statSync(input).size)} JSONL, ${mib(fs.statSync(pqInput).size)} Parquet (made in ${((performance.now() - t) / 1000).toFixed(1)} s), ${os.availableParallelism()} cpus; platform defaults: ${cfg.MODELQ_WORKERS} workers x ${cfg.MODELQ_ENGINE_THREADS} engine threads, ${cfg.MODELQ_SCORE_CONCURRENCY} chunks each`,
    );

    // Rounds of baseline then platform, side by side (bench/lib/fair.ts): the medians are reported.
    const best = (script: string, extra: (threads: number) => string[]) =>
      bestOfThreads(
        (threads) => child(script, ['--model', modelFile, '--threads', String(threads), ...extra(threads)]),
        (r) => r.rowsPerSecond,
      );
    // CPU seconds per 1000 rows: what each costs in work, whatever else the machine is doing.
    const per1k = (cpu: number, rows: number) => `${((cpu / rows) * 1000).toFixed(3)} CPU-s/1000 rows`;
    type Run = Awaited<ReturnType<typeof platformRun>>;
    const last: { JSONL?: Run; Parquet?: Run } = {};
    const printPlatform = (name: 'JSONL' | 'Parquet', r: Run) =>
      console.log(
        `platform ${name}: ${r.rowsPerSecond.toFixed(0)} rows/s (${r.seconds.toFixed(1)} s: upload ${r.upload.toFixed(1)} s, scoring ${r.scoring.toFixed(1)} s, download ${r.download.toFixed(1)} s), ${r.status}, ${r.completed} rows, ${per1k(r.cpuSeconds, ROWS)} (producer + workers); peak RSS producer ${mib(r.rss.producer)}, workers ${r.rss.workers.map(mib).join(', ')}`,
      );
    const jsonl = await interleave({
      baseline: async () => {
        const b = await best('bench/lib/plain-batch.ts', (th) => ['--input', input, '--output', path.join(dir, `plain-${th}.jsonl`)]);
        for (const { threads, result: r } of b.all)
          console.log(
            `plain script (JSONL), ${threads} onnxruntime thread(s): ${r.rowsPerSecond.toFixed(0)} rows/s, ${per1k(r.cpuSeconds, r.rows)} (process total, start included)`,
          );
        return b.best.rowsPerSecond;
      },
      platform: async () => {
        const r = (last.JSONL = await platformRun(bytes, input, 'application/x-ndjson', 'jsonl', path.join(dir, 'out.jsonl')));
        printPlatform('JSONL', r);
        return r.rowsPerSecond;
      },
    });
    const parquet = await interleave({
      baseline: async () => {
        const b = await best('bench/lib/raw-onnx.ts', () => ['--rows', String(Math.min(ROWS, 100_000))]);
        for (const { threads, result: r } of b.all)
          console.log(
            `raw onnxruntime (ready tensors of 512 rows), ${threads} thread(s): ${r.rowsPerSecond.toFixed(0)} rows/s, ${per1k(r.cpuSeconds, r.rows)} (process total, start included)`,
          );
        return b.best.rowsPerSecond;
      },
      platform: async () => {
        const r = (last.Parquet = await platformRun(bytes, pqInput, 'application/vnd.apache.parquet', 'parquet', path.join(dir, 'out.parquet')));
        printPlatform('Parquet', r);
        return r.rowsPerSecond;
      },
    });
    const rounds = jsonl.ratios.length;
    const rss = (r: Run) => `${mib(r.rss.producer)} | ${r.rss.workers.map(mib).join(', ')}`;
    console.log(
      `\n| format | platform rows/s (median of ${rounds}) | best-of-threads baseline (same rounds) | ratio | producer peak RSS | worker peak RSS (last round) |`,
    );
    console.log('|---|---|---|---|---|---|');
    console.log(
      `| JSONL | ${jsonl.medianPlatform.toFixed(0)} | plain script ${jsonl.medianBaseline.toFixed(0)} | ${ratioText(jsonl.ratio, rounds)} (target >= 1.2x) | ${rss(last.JSONL!)} |`,
    );
    console.log(
      `| Parquet | ${parquet.medianPlatform.toFixed(0)} | raw onnxruntime ${parquet.medianBaseline.toFixed(0)} | ${ratioText(parquet.ratio, rounds)} (target >= 0.8x); ${ratioText(parquet.medianPlatform / jsonl.medianPlatform, rounds)} JSONL | ${rss(last.Parquet!)} |`,
    );
    // Parquet by reference from an S3-protocol server (bench/batch-ref.ts): no upload, parts written by
    // the workers; interleaved with the raw onnxruntime baseline like the rows above.
    let lastRef: Awaited<ReturnType<typeof benchBatchRef>> | undefined;
    const byRef = await interleave({
      baseline: async () => (await best('bench/lib/raw-onnx.ts', () => ['--rows', String(Math.min(ROWS, 100_000))])).best.rowsPerSecond,
      platform: async () => {
        lastRef = await benchBatchRef(bytes, pqInput, ROWS, F, cfg.MODELQ_WORKERS, writeParquetInput);
        return lastRef.rowsPerSecond;
      },
    });
    console.log(
      `| Parquet by reference (s3rver) | ${byRef.medianPlatform.toFixed(0)} | raw onnxruntime ${byRef.medianBaseline.toFixed(0)} | ${ratioText(byRef.ratio, rounds)} (target >= 0.8x), ${lastRef!.status} ${lastRef!.completed} rows | ${mib(lastRef!.rss.producer)} | ${lastRef!.rss.workers.map(mib).join(', ')} |`,
    );

    // Where an engine thread's time goes on JSONL: onnxruntime vs parsing and formatting.
    const sample = Buffer.from(fs.readFileSync(input, 'latin1').split('\n').slice(0, 1024).join('\n'), 'latin1');
    for (const p of await profileSegments(bytes, sample, F)) {
      console.log(
        `engine thread, fast rows ${p.fast ? 'on ' : 'off'}: ${p.rowsPerSecond.toFixed(0)} rows/s per thread; per 1000 rows ${p.msPer1kRows.run.toFixed(1)} ms onnxruntime, ${p.msPer1kRows.rest.toFixed(1)} ms parsing + formatting (${(p.runShare * 100).toFixed(0)}% in onnxruntime)`,
      );
    }
    // The same on Parquet: one row group (10,000 rows), decoding + formatting vs onnxruntime.
    for (const p of await profileRowGroup(bytes, fs.readFileSync(pqInput), F)) {
      console.log(
        `engine thread, Parquet row group, fast decoder ${p.fast ? 'on ' : 'off'}: ${p.rowsPerSecond.toFixed(0)} rows/s per thread; per 1000 rows ${p.msPer1kRows.run.toFixed(1)} ms onnxruntime, ${p.msPer1kRows.rest.toFixed(1)} ms decoding + formatting (${(p.runShare * 100).toFixed(0)}% in onnxruntime)`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

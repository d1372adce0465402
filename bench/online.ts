// Online inference: the platform (HTTP -> Redis -> worker engine with dynamic batching) against
// the tutorial server (bare node:http, or express with BENCH_BASELINE=express, + session.run in
// the handler), same model, same closed-loop load;
// and the platform's gRPC service (raw_input_contents) beside its REST JSON route. The tutorial
// server runs at 1 and 2 intra-op threads (the best counts); each client count runs
// MODELQ_BENCH_REPEATS rounds of baseline, REST and gRPC, and the median round and ratio are shown:
// a gRPC-vs-REST sweep over the client counts, with the CPU each platform process spends per request
// (user + system of all its threads over the run, as process.cpuUsage() counts it, read from /proc;
// Redis's from INFO, which counts its other clients too when it is shared).
// Beside them, the raw batched onnxruntime limit: session.run on ready tensors of the rows per run the
// platform's batcher reached (engine rows / runs from /metrics over the REST run at BENCH_RAW_CLIENTS),
// best of 1 and 2 threads, in the same round; the platform's rows/s is printed as a ratio of it, and
// the issue's targets are printed beside the figures.
// Env: BENCH_CLIENTS=1,4,16,64,256  BENCH_SECONDS=5  BENCH_WARMUP_SECONDS=1  BENCH_WORKERS=1
//      BENCH_RAW_CLIENTS=64 (the client count whose batches the raw run copies)  BENCH_RAW_ROWS=50000
//      MODELQ_ONLINE_TRANSPORT=bullmq|streams (the platform's producer hands requests to workers so)
//      BENCH_MODELS=512-2048-2048-10,256-1024-1024-10 (layer widths, input first)
//      BENCH_BASELINE=http|express (the in-handler server: bare node:http by default)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { Redis } from 'ioredis';
import { PROTO_OPTIONS, PROTO_PATH } from '../producer/grpc/server.ts';
import { buildMlp } from '../workers/onnx/builder.ts';
import { spawnNode, stopChild, waitForLine } from './lib/child.ts';
import { baselineThreads, bestOfThreads, interleave, median, ratioText, repeats } from './lib/fair.ts';
import { runGrpcLoad, runLoad, type LoadResult } from './lib/load.ts';
import { startPlatform, type Platform } from './lib/platform.ts';

export interface OnlineOptions {
  /** Concurrent clients per run. Default BENCH_CLIENTS or [1, 4, 16, 64, 256]. */
  clients?: number[];
  /** Measured seconds per run. Default BENCH_SECONDS or 5. */
  seconds?: number;
  /** Unmeasured seconds of load before each run. Default BENCH_WARMUP_SECONDS or 1. */
  warmupSeconds?: number;
  /** Worker processes the platform starts. Default BENCH_WORKERS or 1. */
  workers?: number;
  /** MLP layer widths, input first. Default [[512,2048,2048,10], [256,1024,1024,10]]. */
  models?: number[][];
  /** Skip the platform side (baseline only). Default false. */
  baselineOnly?: boolean;
}

/** CPU microseconds per answered request, per process, over one run. */
interface CpuPerRequest {
  producer: number;
  workers: number[];
  redis: number;
}
type Measured = LoadResult & { cpu?: CpuPerRequest };

/** The raw onnxruntime baseline of one round: rows/s at the batch the platform's batcher reached. */
interface Raw {
  batch: number;
  rowsPerSecond: number;
  threads: number;
}

interface Row {
  clients: number;
  /** Rows per engine run during the REST run (median round), from the workers' figures. */
  rowsPerRun?: number;
  /** The raw baseline (median round) and the platform's REST rows/s as a ratio of it, at BENCH_RAW_CLIENTS. */
  raw?: Raw;
  restToRaw?: string;
  /** The median round of each side (by requests/s). */
  baseline?: LoadResult;
  platform?: Measured;
  grpc?: Measured;
  /** Median of the per-round ratios, as ratioText prints it. */
  restToBase?: string;
  grpcToRest?: string;
}

/** The result of the median round by requests/s. */
const medianRun = <T extends LoadResult>(xs: T[]) => [...xs].sort((a, b) => a.rps - b.rps)[(xs.length - 1) >> 1]!;

const envNum = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
const envList = (k: string) =>
  process.env[k]
    ?.split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);

/** One request: a single row of seeded values in [0, 1). */
export function inferBody(features: number, seed = 7): string {
  let s = seed;
  const data = Array.from({ length: features }, () => (s = (s * 16807) % 2147483647) / 2147483647);
  return JSON.stringify({ inputs: [{ name: 'input', shape: [1, features], datatype: 'FP32', data }] });
}

const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';

/** The same row as inferBody, as a serialized gRPC ModelInferRequest with raw_input_contents (as Triton's clients send). */
export function grpcInferMessage(model: string, features: number, seed = 7): Buffer {
  const body = JSON.parse(inferBody(features, seed)) as { inputs: [{ data: number[] }] };
  const def = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)['inference.GRPCInferenceService'] as protoLoader.ServiceDefinition;
  const raw = Buffer.from(Float32Array.from(body.inputs[0].data).buffer);
  return def.ModelInfer!.requestSerialize({
    model_name: model,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, features] }],
    raw_input_contents: [raw],
  });
}

/** One gRPC call with a long timeout: it must succeed before the gRPC side is measured. */
async function primeGrpc(address: string, message: Buffer) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  try {
    await new Promise<void>((resolve, reject) =>
      client.makeUnaryRequest(
        MODEL_INFER,
        (b: Buffer) => b,
        (b: Buffer) => b,
        message,
        { deadline: Date.now() + 60_000 },
        (e) => (e ? reject(new Error(`priming gRPC ${address}: ${e.message}`)) : resolve()),
      ),
    );
  } finally {
    client.close();
  }
}

/** A model's engine runs and rows so far, summed over the workers' figures in /metrics. */
async function engineFigures(url: string, model: string): Promise<{ runs: number; rows: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sum = (metric: string) =>
    [...text.matchAll(new RegExp(`^${metric}\\{[^}]*model="${model}(?:@[^"]*)?"[^}]*\\} ([\\d.e+]+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
  return { runs: sum('modelq_engine_model_runs_total'), rows: sum('modelq_engine_model_rows_total') };
}

/** The workers publish their figures every MODELQ_STATS_INTERVAL_MS (set short below): wait for two. */
const STATS_MS = 250;
const settled = () => new Promise((r) => setTimeout(r, 2 * STATS_MS + 100));

/** session.run on ready tensors of `batch` rows (bench/lib/raw-onnx.ts), best of the baseline thread settings. */
async function rawOnnx(modelFile: string, batch: number): Promise<Raw> {
  const rows = String(Math.max(batch * 20, envNum('BENCH_RAW_ROWS') ?? 50_000));
  const b = await bestOfThreads(
    async (threads) => {
      const c = spawnNode({
        args: ['--import', 'tsx', 'bench/lib/raw-onnx.ts', '--model', modelFile, '--threads', String(threads), '--rows', rows, '--batch', String(batch)],
      });
      try {
        const [line] = await waitForLine(c, /^\{"rows".*\}$/, 300_000);
        return JSON.parse(line) as { rowsPerSecond: number };
      } finally {
        await stopChild(c);
      }
    },
    (r) => r.rowsPerSecond,
  );
  return { batch, rowsPerSecond: b.best.rowsPerSecond, threads: b.threads };
}

/** Redis's CPU seconds so far (INFO used_cpu_user + used_cpu_sys). */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const v = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return v('used_cpu_user') + v('used_cpu_sys');
}

/** Runs `load` and adds each platform process's CPU per request over it. */
async function withCpu(platform: Platform, redis: Redis, o: Required<OnlineOptions>, load: () => Promise<LoadResult>): Promise<Measured> {
  const [c0, r0] = [platform.cpuByProcess(), await redisCpuSeconds(redis)];
  const r = await load();
  const [c1, r1] = [platform.cpuByProcess(), await redisCpuSeconds(redis)];
  // Warm-up requests are not counted in r.requests but use CPU: counted at the measured window's rate.
  const n = Math.max(1, r.requests + r.errors) * (1 + o.warmupSeconds / Math.max(0.001, o.seconds));
  const us = (a: number, b: number) => ((b - a) * 1e6) / n;
  return {
    ...r,
    cpu: { producer: us(c0.producer, c1.producer), workers: c1.workers.map((w, i) => us(c0.workers[i] ?? w, w)), redis: us(r0, r1) },
  };
}

const runGrpc = (address: string, message: Buffer, clients: number, o: Required<OnlineOptions>) =>
  runGrpcLoad({ address, method: MODEL_INFER, message, concurrency: clients, durationMs: o.seconds * 1000, warmupMs: o.warmupSeconds * 1000 });

/** One request with a long timeout, so the first session load is not part of any figure. */
async function prime(url: string, body: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`priming ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
}

const run = (url: string, body: string, clients: number, o: Required<OnlineOptions>) =>
  runLoad({ url, body, concurrency: clients, durationMs: o.seconds * 1000, warmupMs: o.warmupSeconds * 1000 });

/**
 * The in-handler server the platform is compared with: bare node:http (the issue's target names it)
 * or express, BENCH_BASELINE=http (default) or express.
 */
const baselineKind = () => (process.env.BENCH_BASELINE === 'express' ? 'express' : 'node:http');

/** The tutorial server for one model; resolves with its infer URL once the model is loaded. */
async function startBaseline(modelFile: string, name: string, threads: number) {
  const child = spawnNode({
    args: [
      '--import',
      'tsx',
      'bench/lib/baseline-server.ts',
      '--model',
      modelFile,
      '--name',
      name,
      '--port',
      '0',
      '--threads',
      String(threads),
      ...(baselineKind() === 'node:http' ? ['--http'] : []),
    ],
  });
  try {
    const [, port] = await waitForLine(child, /^listening (\d+)$/, 60_000);
    return { threads, url: `http://127.0.0.1:${port}/v2/models/${name}/infer`, stop: () => stopChild(child) };
  } catch (e) {
    await stopChild(child);
    throw e;
  }
}

const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);
const errs = (r: LoadResult) => (r.errors ? `${r.errors} (${r.firstError})` : '0');

function printTable(name: string, rows: Row[]) {
  const head = [
    'clients',
    'base rps',
    'p50 ms',
    'p99 ms',
    'errors',
    'rest rps',
    'p50 ms',
    'p99 ms',
    'errors',
    'rest/base',
    'grpc rps',
    'p50 ms',
    'p99 ms',
    'errors',
    'grpc/rest',
    'rows/run',
  ];
  const cells = (x?: LoadResult) => (x ? [f0(x.rps), f1(x.p50Ms), f1(x.p99Ms), errs(x)] : ['-', '-', '-', '-']);
  const body = rows.map((r) => [
    String(r.clients),
    ...cells(r.baseline),
    ...cells(r.platform),
    r.restToBase ?? '-',
    ...cells(r.grpc),
    r.grpcToRest ?? '-',
    r.rowsPerRun === undefined ? '-' : f1(r.rowsPerRun),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ');
  console.log(`\n${name}`);
  console.log(line(head));
  for (const r of body) console.log(line(r));
  const cpuRows = rows.filter((r) => r.platform?.cpu || r.grpc?.cpu);
  if (!cpuRows.length) return;
  const cpuHead = ['clients', 'rest producer us', 'workers us', 'redis us', 'grpc producer us', 'workers us', 'redis us'];
  const cpuCells = (x?: Measured) => (x?.cpu ? [f0(x.cpu.producer), x.cpu.workers.map(f0).join('+') || '-', f0(x.cpu.redis)] : ['-', '-', '-']);
  const cpuBody = cpuRows.map((r) => [String(r.clients), ...cpuCells(r.platform), ...cpuCells(r.grpc)]);
  const cw = cpuHead.map((h, i) => Math.max(h.length, ...cpuBody.map((r) => r[i]!.length)));
  console.log('CPU per request, per process (median round; user + system of all threads)');
  console.log(cpuHead.map((c, i) => c.padStart(cw[i]!)).join('  '));
  for (const r of cpuBody) console.log(r.map((c, i) => c.padStart(cw[i]!)).join('  '));
}

/** The issue's targets (#27) beside this run's figures; "met" judges the medians printed above. */
function printTargets(rows: Row[], rawClients: number) {
  const at = (c: number) => rows.find((r) => r.clients === c);
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'not measured' : ok ? 'met' : 'NOT met');
  const ratioOf = (text?: string) => (text ? Number.parseFloat(text) : NaN);
  console.log(`targets (issue 27; on a quiet machine, MLP 512-2048-2048-10, baseline bare node:http, this run's baseline: ${baselineKind()}):`);
  const r64 = at(64);
  const x64 = ratioOf(r64?.restToBase);
  console.log(
    `  REST >= 4x the in-handler server's requests/s at 64 clients, p99 <= 50 ms: ${r64?.platform ? `${r64.restToBase}, p99 ${f1(r64.platform.p99Ms)} ms` : '-'}: ${verdict(r64?.platform ? x64 >= 4 && r64.platform.p99Ms <= 50 : undefined)}`,
  );
  const raw = at(rawClients);
  console.log(
    `  platform rows/s >= 0.5x raw batched onnxruntime (${rawClients} clients): ${raw?.raw ? `${raw.restToRaw} of ${f0(raw.raw.rowsPerSecond)} rows/s at batch ${raw.raw.batch} (${raw.raw.threads} thread(s))` : '-'}: ${verdict(raw?.raw ? ratioOf(raw.restToRaw) >= 0.5 : undefined)}`,
  );
  const swept = rows.filter((r) => r.grpcToRest && r.clients >= 1 && r.clients <= 256);
  console.log(
    `  gRPC >= 1.0x REST at every concurrency 1-256: ${swept.map((r) => `${r.clients}: ${r.grpcToRest}`).join(', ') || '-'}: ${verdict(swept.length ? swept.every((r) => ratioOf(r.grpcToRest) >= 1) : undefined)}`,
  );
  const one = at(1);
  const gap = one?.platform && one.baseline ? one.platform.p50Ms - one.baseline.p50Ms : undefined;
  console.log(
    `  p50 at 1 connection within 2 ms of the in-handler server: ${gap === undefined ? '-' : `${f1(gap)} ms apart`}: ${verdict(gap === undefined ? undefined : gap <= 2)}`,
  );
}

export async function benchOnline(opts: OnlineOptions = {}) {
  const o: Required<OnlineOptions> = {
    clients: [...new Set(opts.clients ?? envList('BENCH_CLIENTS') ?? [1, 4, 16, 64, 256])],
    seconds: opts.seconds ?? envNum('BENCH_SECONDS') ?? 5,
    warmupSeconds: opts.warmupSeconds ?? envNum('BENCH_WARMUP_SECONDS') ?? 1,
    workers: opts.workers ?? envNum('BENCH_WORKERS') ?? 1,
    models: opts.models ??
      process.env.BENCH_MODELS?.split(',').map((m) => m.split('-').map(Number)) ?? [
        [512, 2048, 2048, 10],
        [256, 1024, 1024, 10],
      ],
    baselineOnly: opts.baselineOnly ?? false,
  };
  console.log(
    `online: clients ${o.clients.join(',')}, ${o.seconds} s + ${o.warmupSeconds} s warm-up per run, ` +
      `platform workers ${o.workers} (online transport ${process.env.MODELQ_ONLINE_TRANSPORT ?? 'streams'}), ${os.cpus().length} cpus`,
  );

  const rawClients = envNum('BENCH_RAW_CLIENTS') ?? (o.clients.includes(64) ? 64 : Math.max(...o.clients));
  // Engine runs and rows per REST run come from the workers' figures, published this often.
  process.env.MODELQ_STATS_INTERVAL_MS ??= String(STATS_MS);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-online-'));
  const models = o.models.map((sizes) => {
    const name = `mlp-${sizes.join('-')}`;
    const bytes = buildMlp({ sizes, seed: 1, batch: 'batch' });
    const file = path.join(dir, `${name}.onnx`);
    fs.writeFileSync(file, bytes);
    return { name, sizes, bytes, file, body: inferBody(sizes[0]!) };
  });

  // Both servers stay up, but only one is under load at a time (they would share the same cores),
  // and each client count runs on the baseline and then at once on the platform: on a shared
  // machine the load of others drifts, and adjacent runs keep the ratio honest.
  const results = new Map<string, Row[]>();
  const redis = new Redis(process.env.MODELQ_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    let platform: Platform | undefined;
    const queueToAnswer = new Map<string, LoadResult>();
    if (!o.baselineOnly) {
      try {
        platform = await startPlatform({ workers: o.workers });
      } catch (e) {
        console.log(`platform: not started, baseline figures only\n${(e as Error).message}`);
      }
    }
    try {
      for (const m of models) {
        console.log(
          `${m.name}: baseline ${baselineKind()} in-handler server (best of ${baselineThreads().join(' and ')} threads)${platform ? ' and platform, alternating' : ''}, ${repeats()} rounds`,
        );
        const bases: Awaited<ReturnType<typeof startBaseline>>[] = [];
        try {
          for (const t of baselineThreads()) bases.push(await startBaseline(m.file, m.name, t));
          for (const b of bases) await prime(b.url, m.body);
          const platUrl = platform ? `${platform.url}/v2/models/${m.name}/infer` : undefined;
          const message = grpcInferMessage(m.name, m.sizes[0]!);
          if (platform && platUrl) {
            await platform.register(m.name, m.bytes);
            await prime(platUrl, m.body);
            await primeGrpc(platform.grpcAddress, message);
          }
          const rows: Row[] = [];
          for (const c of o.clients) {
            // Each round: the baseline at each thread setting (the best counts), then REST, then gRPC.
            const runs = { baseline: [] as LoadResult[], platform: [] as Measured[], grpc: [] as Measured[], rowsPerRun: [] as number[], raw: [] as Raw[] };
            const rest = await interleave({
              baseline: async () => {
                const b = await bestOfThreads(
                  async (t) => run(bases.find((x) => x.threads === t)!.url, m.body, c, o),
                  (r) => r.rps,
                );
                runs.baseline.push(b.best);
                return b.best.rps;
              },
              platform: async () => {
                if (!platUrl || !platform) return NaN;
                const e0 = await engineFigures(platform.url, m.name);
                const r = await withCpu(platform, redis, o, () => run(platUrl, m.body, c, o));
                runs.platform.push(r);
                await settled();
                const e1 = await engineFigures(platform.url, m.name);
                runs.rowsPerRun.push((e1.rows - e0.rows) / Math.max(1, e1.runs - e0.runs));
                // The raw limit at the batch just reached, in the same round (one row per request).
                if (c === rawClients) runs.raw.push(await rawOnnx(m.file, Math.max(1, Math.round(runs.rowsPerRun.at(-1)!))));
                runs.grpc.push(await withCpu(platform, redis, o, () => runGrpc(platform.grpcAddress, message, c, o)));
                return r.rps;
              },
            });
            const row: Row = { clients: c, baseline: medianRun(runs.baseline) };
            if (platUrl) {
              row.platform = medianRun(runs.platform);
              row.grpc = medianRun(runs.grpc);
              row.restToBase = ratioText(rest.ratio, runs.platform.length);
              row.grpcToRest = ratioText(median(runs.grpc.map((g, i) => g.rps / runs.platform[i]!.rps)), runs.grpc.length);
              row.rowsPerRun = median(runs.rowsPerRun);
              if (runs.raw.length) {
                row.raw = [...runs.raw].sort((a, b) => a.rowsPerSecond - b.rowsPerSecond)[(runs.raw.length - 1) >> 1];
                row.restToRaw = ratioText(median(runs.raw.map((x, i) => runs.platform[i]!.rps / x.rowsPerSecond)), runs.raw.length);
              }
            }
            rows.push(row);
          }
          results.set(m.name, rows);
          if (platUrl) queueToAnswer.set(m.name, rows.find((r) => r.clients === 1)?.platform ?? (await run(platUrl, m.body, 1, o)));
        } finally {
          for (const b of bases) await b.stop();
        }
      }
    } finally {
      await platform?.stop();
    }

    for (const m of models) {
      printTable(`${m.name} (one row per request)`, results.get(m.name)!);
      const q = queueToAnswer.get(m.name);
      if (q) console.log(`queue-to-answer latency (platform, 1 client): p50 ${f1(q.p50Ms)} ms, p90 ${f1(q.p90Ms)} ms, p99 ${f1(q.p99Ms)} ms`);
      printTargets(results.get(m.name)!, rawClients);
    }
    return results;
  } finally {
    redis.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Batch scoring by reference (#26): the same Parquet input as `npm run bench batch`, put in an
// S3-protocol server (s3rver, as the tests run it) as BENCH_REF_PARTS parts, scored from there into
// a Parquet output prefix: submit to manifest, against the raw onnxruntime rate the caller measured
// in the same run. BENCH_CPU_PROF=<dir> also writes a V8 CPU profile of the platform's processes'
// main threads (bench/cpu-prof-preload.mjs) and prints where each spent its time (self time by function).
// Env: BENCH_REF_PARTS=5, BENCH_CPU_PROF unset.
import fs from 'node:fs';
import path from 'node:path';
import { S3Store } from '../core/storage/s3-store.ts';
import { S3_CREDENTIALS, s3Env, startS3Server } from '../test/unit/core/storage/s3-server.ts';
import { startPlatform } from './lib/platform.ts';

const PARTS = Number(process.env.BENCH_REF_PARTS ?? 5);
/** The 2,000,000-row prefix mode (BENCH_PREFIX_ROWS): more, smaller objects, as a dataset of parts has. */
const PREFIX_PARTS = Number(process.env.BENCH_PREFIX_PARTS ?? 20);
const BUCKET = 'bench';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * Where a process's main thread spent `window` (CLOCK_MONOTONIC microseconds, the clock V8 stamps
 * samples with on Linux): its busy share, and the functions with the most self time as "share% name
 * (file:line)" of the busy time.
 */
export function topSelfTime(file: string, window: [number, number], top = 10): { busy: number; top: string[] } {
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile & { startTime: number };
  const byNode = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let t = p.startTime;
  let busy = 0;
  let all = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < window[0] || t > window[1]) return;
    all += dt;
    const f = byNode.get(id)!.callFrame;
    if (f.functionName === '(idle)') return;
    busy += dt;
    const key = `${f.functionName || '(anonymous)'} (${path.basename(f.url || 'native')}:${f.lineNumber + 1})`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return {
    busy: all ? busy / all : 0,
    top: [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `${((v / busy) * 100).toFixed(1)}% ${k}`),
  };
}

/** Splits a Parquet file's rows into PARTS objects: the bench writes one file, a dataset has several. */
async function putParts(
  store: S3Store,
  pqInput: string,
  rows: number,
  features: number,
  write: (file: string, rows: number, features: number) => Promise<void>,
  parts: number,
) {
  const dir = path.dirname(pqInput);
  for (let i = 0; i < parts; i++) {
    const n = Math.floor(rows / parts) + (i < rows % parts ? 1 : 0);
    const file = path.join(dir, `ref-part-${i}.parquet`);
    await write(file, n, features);
    await store.put(`in/part-${i}.parquet`, fs.createReadStream(file));
    fs.rmSync(file);
  }
}

export interface RefResult {
  rowsPerSecond: number;
  seconds: number;
  status: string;
  completed: number;
  rss: { producer: number; workers: number[] };
  /** Resident memory (VmRSS) sampled every 250 ms from submit to the end: the producer's at submit and at most, each worker's most. */
  rssDuring: { producerAtSubmit: number; producerMax: number; workersMax: number[] };
  cpu: { producer: number; workers: number[] };
}

/** One by-reference run: `rows` rows of `features` in PARTS Parquet objects, scored into a Parquet prefix. */
export async function benchBatchRef(
  model: Uint8Array,
  pqInput: string,
  rows: number,
  features: number,
  workers: number,
  write: (file: string, rows: number, features: number) => Promise<void>,
  parts = PARTS,
): Promise<RefResult> {
  const s3 = await startS3Server({ buckets: [BUCKET, 'platform'] });
  const env: Record<string, string> = {
    ...s3Env(s3.endpoint, 'platform'),
    MODELQ_STORE: 'fs',
    MODELQ_BATCH_ROOTS: JSON.stringify({ default: [`s3://${BUCKET}/`] }),
  };
  const prof = process.env.BENCH_CPU_PROF;
  if (prof) {
    fs.mkdirSync(prof, { recursive: true });
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: a preload profiles each process's main thread instead.
    env.BENCH_CPU_PROF = path.resolve(prof);
    env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${path.resolve(import.meta.dirname, 'cpu-prof-preload.mjs')}`.trim();
  }
  const saved = { ...process.env };
  Object.assign(process.env, env); // the platform child takes this process's environment
  const store = new S3Store({ bucket: BUCKET, endpoint: s3.endpoint, credentials: S3_CREDENTIALS });
  let span: [number, number] = [0, 0];
  try {
    await putParts(store, pqInput, rows, features, write, parts);
    const platform = await startPlatform({ workers });
    process.env = saved;
    try {
      await platform.register('bench', model);
      const rss0 = platform.rssNow();
      const during = { producerAtSubmit: rss0.producer, producerMax: rss0.producer, workersMax: rss0.workers };
      const sample = () => {
        const r = platform.rssNow();
        during.producerMax = Math.max(during.producerMax, r.producer);
        during.workersMax = r.workers.map((w, i) => Math.max(w, during.workersMax[i] ?? 0));
      };
      const sampler = setInterval(sample, 250);
      const cpu0 = platform.cpuByProcess();
      const t = performance.now();
      const micros = () => Number(process.hrtime.bigint() / 1000n);
      span = [micros(), 0];
      const res = await fetch(`${platform.url}/v1/batches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bench', input: { uri: `s3://${BUCKET}/in/` }, output: { uri: `s3://${BUCKET}/out/`, format: 'parquet' } }),
      });
      if (res.status !== 202) throw new Error(`submit by reference: HTTP ${res.status} ${await res.text()}`);
      const { id } = (await res.json()) as { id: string };
      let v: { status: string; requestCounts: { completed: number } };
      for (;;) {
        v = (await (await fetch(`${platform.url}/v1/batches/${id}`)).json()) as typeof v;
        if (['completed', 'failed', 'cancelled'].includes(v.status)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const seconds = (performance.now() - t) / 1000;
      clearInterval(sampler);
      sample();
      const cpu1 = platform.cpuByProcess();
      span[1] = micros();
      if (v.status === 'completed' && !(await store.stat('out/_manifest.json'))) throw new Error('completed without out/_manifest.json');
      return {
        rowsPerSecond: rows / seconds,
        seconds,
        status: v.status,
        completed: v.requestCounts.completed,
        rss: platform.peakRss(),
        rssDuring: during,
        cpu: { producer: cpu1.producer - cpu0.producer, workers: cpu1.workers.map((c, i) => c - (cpu0.workers[i] ?? 0)) },
      };
    } finally {
      await platform.stop();
      if (prof) {
        for (const f of fs.readdirSync(prof).filter((x) => x.endsWith('.cpuprofile'))) {
          const r = topSelfTime(path.join(prof, f), span);
          console.log(`cpu profile ${f}, main thread busy ${(r.busy * 100).toFixed(0)}% of the batch (submit to completed); of that:\n  ${r.top.join('\n  ')}`);
        }
      }
    }
  } finally {
    process.env = saved;
    store.close();
    await s3.stop();
  }
}

/**
 * BENCH_PREFIX_ROWS: a large prefix by reference (the 2,000,000 rows), BENCH_PREFIX_PARTS
 * Parquet objects, scored into a Parquet prefix; prints rows/s, CPU per 1000 rows per process and
 * resident memory: the producer's at submit and at most during the run (flat: it never reads the
 * data), each worker's most (bounded: a few row groups at a time, whatever the prefix's size).
 */
export async function benchPrefix(
  model: Uint8Array,
  dir: string,
  rows: number,
  features: number,
  workers: number,
  write: (file: string, rows: number, features: number) => Promise<void>,
): Promise<RefResult> {
  const mib = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
  const r = await benchBatchRef(model, path.join(dir, 'prefix.parquet'), rows, features, workers, write, PREFIX_PARTS);
  const per1k = (cpu: number) => `${((cpu / rows) * 1000).toFixed(3)} CPU-s/1000 rows`;
  console.log(
    `prefix by reference: ${rows} rows in ${PREFIX_PARTS} Parquet objects, ${r.status} ${r.completed} rows in ${r.seconds.toFixed(1)} s (${r.rowsPerSecond.toFixed(0)} rows/s)`,
  );
  console.log(`  CPU: producer ${per1k(r.cpu.producer)}; workers ${r.cpu.workers.map(per1k).join(', ')}`);
  console.log(
    `  producer RSS: ${mib(r.rssDuring.producerAtSubmit)} at submit, ${mib(r.rssDuring.producerMax)} at most during the run (+${mib(r.rssDuring.producerMax - r.rssDuring.producerAtSubmit)}); peak since start ${mib(r.rss.producer)}`,
  );
  console.log(`  worker RSS at most during the run: ${r.rssDuring.workersMax.map(mib).join(', ')}; peaks since start ${r.rss.workers.map(mib).join(', ')}`);
  return r;
}

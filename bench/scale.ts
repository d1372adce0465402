// Scale-out: batch scoring rows/s with 1, 2 and 4 worker processes on this machine, as ratios to
// one, and what Redis spends per chunk (commands and CPU, read from a private redis-server's INFO
// before and after each run), from which follows how many workers one Redis serves before it is
// the bottleneck. On a 2-core machine the ratios flatten past 2 workers: the cores are the limit.
// Env: BENCH_SCALE_ROWS=60000  BENCH_SCALE_WORKERS=1,2,4  BENCH_SCALE_CHUNK_ROWS=2000
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { buildMlp } from '../workers/onnx/builder.ts';
import { freePort, pollUntil, stopChild } from './lib/child.ts';
import { startPlatform } from './lib/platform.ts';
import { postFile, writeInput } from './lib/batch-input.ts';
import { median, ratioText, repeats } from './lib/fair.ts';

const ROWS = Number(process.env.BENCH_SCALE_ROWS ?? 60_000);
const WORKERS = (process.env.BENCH_SCALE_WORKERS ?? '1,2,4').split(',').map(Number);
const CHUNK_ROWS = Number(process.env.BENCH_SCALE_CHUNK_ROWS ?? 2000);
const F = 64;

interface RedisSample {
  calls: number;
  usec: number;
  cpu: number;
}

/** Commands executed, their server time, and the server's CPU seconds (user + sys) so far. */
async function sample(r: Redis): Promise<RedisSample> {
  const stats = await r.info('commandstats');
  let calls = 0;
  let usec = 0;
  for (const m of stats.matchAll(/^cmdstat_[^:]+:calls=(\d+),usec=(\d+)/gm)) {
    calls += Number(m[1]);
    usec += Number(m[2]);
  }
  const cpu = await r.info('cpu');
  const num = (k: string) => Number(new RegExp(`^${k}:([0-9.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls, usec, cpu: num('used_cpu_user') + num('used_cpu_sys') };
}

export async function benchScale() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-scale-'));
  // A Redis of our own: its INFO counts only this benchmark's commands.
  const port = await freePort();
  const redisServer = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction', '--dir', dir],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  const redis = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  redis.on('error', () => {});
  const savedUrl = process.env.MODELQ_REDIS_URL;
  try {
    await pollUntil('private redis-server', async () => (await redis.ping()) === 'PONG', 10_000);
    const bytes = buildMlp({ sizes: [F, 1024, 1024, 10], seed: 1 });
    const input = path.join(dir, 'input.jsonl');
    writeInput(input, ROWS, F);
    const chunks = Math.ceil(ROWS / CHUNK_ROWS);
    console.log(
      `scale: ${ROWS} rows x ${F} features, MLP ${F}-1024-1024-10, ${chunks} chunks of ${CHUNK_ROWS}, ${(fs.statSync(input).size / 1024 ** 2).toFixed(0)} MiB JSONL, ${os.availableParallelism()} cpus, 1 engine thread per worker`,
    );

    process.env.MODELQ_REDIS_URL = url;
    process.env.MODELQ_ENGINE_THREADS ??= '1';
    const results: { round: number; workers: number; rps: number; e2e: number; calls: number; usec: number; cpu: number }[] = [];
    // Rounds over every worker count in turn (bench/lib/fair.ts), so load drift hits each alike.
    for (let round = 0; round < repeats(); round++)
      for (const workers of WORKERS) {
        const platform = await startPlatform({ workers });
        try {
          await platform.register('scale', bytes);
          const t0 = performance.now();
          const res = await postFile(`${platform.url}/v1/batches?model=scale&chunkRows=${CHUNK_ROWS}`, input);
          if (res.status !== 202) throw new Error(`submit: HTTP ${res.status} ${res.body}`);
          const { id } = JSON.parse(res.body) as { id: string };
          const uploaded = performance.now();
          const before = await sample(redis);
          let v: { status: string; requestCounts: { completed: number } };
          for (;;) {
            v = (await (await fetch(`${platform.url}/v1/batches/${id}`)).json()) as typeof v;
            if (['completed', 'failed', 'cancelled'].includes(v.status)) break;
            await new Promise((r) => setTimeout(r, 250));
          }
          const scored = performance.now();
          const after = await sample(redis);
          if (v.status !== 'completed') throw new Error(`batch ${v.status}`);
          // What idle workers cost Redis anyway (blocking polls, stall checks, figures), over as long
          // as the batch took, is not the chunks' doing: subtract it.
          const seconds = (scored - uploaded) / 1000;
          const idleStart = await sample(redis);
          const idleMs = Math.min(3000, Math.max(1000, seconds * 1000));
          await new Promise((r) => setTimeout(r, idleMs));
          const idleEnd = await sample(redis);
          const idle = (k: keyof RedisSample) => ((idleEnd[k] - idleStart[k]) / idleMs) * 1000 * seconds;
          const per = (k: keyof RedisSample) => Math.max(0, after[k] - before[k] - idle(k)) / chunks;
          const rps = ROWS / seconds;
          const r = { round, workers, rps, e2e: ROWS / ((scored - t0) / 1000), calls: per('calls'), usec: per('usec'), cpu: per('cpu') };
          results.push(r);
          console.log(
            `${workers} worker process(es): ${rps.toFixed(0)} rows/s scoring (${r.e2e.toFixed(0)} rows/s with the upload); Redis per chunk beyond idle: ${r.calls.toFixed(0)} commands, ${r.usec.toFixed(0)} us in commands, ${(r.cpu * 1e3).toFixed(2)} ms CPU`,
          );
        } finally {
          await platform.stop();
        }
      }
    const base = WORKERS.includes(1) ? 1 : WORKERS[0]!;
    const rounds = repeats();
    const ratioTo = (workers: number) =>
      median(results.filter((r) => r.workers === workers).map((r) => r.rps / results.find((b) => b.round === r.round && b.workers === base)!.rps));
    console.log(`ratios to ${base} worker(s), median of per-round ratios: ${WORKERS.map((w) => `${w}: ${ratioText(ratioTo(w), rounds)}`).join(', ')}`);
    const one = { rps: median(results.filter((r) => r.workers === base).map((r) => r.rps)) };

    // How many workers one Redis serves: Redis runs commands on one core; a chunk costs `cpu` of it.
    const worst = results.reduce((a, b) => (b.cpu > a.cpu ? b : a));
    const chunksPerSec = 1 / Math.max(worst.cpu, 1e-6);
    const rowsPerSec = chunksPerSec * CHUNK_ROWS;
    console.log(
      `estimate: one Redis core at 100% takes ~${chunksPerSec.toFixed(0)} chunks/s = ${(rowsPerSec / 1e6).toFixed(1)}M rows/s at ${CHUNK_ROWS} rows/chunk; ` +
        `at ${one.rps.toFixed(0)} rows/s per worker that is ~${Math.floor(rowsPerSec / one.rps)} workers (keep Redis under half: ~${Math.floor(rowsPerSec / one.rps / 2)}); ` +
        `per-chunk costs include this bench's status polls (4/s); more rows per chunk means fewer chunks per row.`,
    );
  } finally {
    if (savedUrl === undefined) delete process.env.MODELQ_REDIS_URL;
    else process.env.MODELQ_REDIS_URL = savedUrl;
    redis.disconnect();
    await stopChild(redisServer, 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

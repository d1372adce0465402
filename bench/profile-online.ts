// Where an online request's CPU goes: the producer and one worker run with --cpu-prof under a short
// closed-loop REST load (or gRPC, BENCH_PROTOCOL=grpc); each process's CPU per request is split by
// the profile's self time into areas (HTTP, gRPC, BullMQ, Redis client, JSON, the engine, modelq's
// own code, GC), and the heaviest functions are listed. A profile, not a benchmark: it prints
// microseconds per request on whatever machine it runs, and the .cpuprofile files for a viewer.
// Run: node --import tsx bench/profile-online.ts
// Redis's own CPU per request (INFO used_cpu_*) is printed beside the processes'.
// Env: BENCH_SECONDS=8  BENCH_CLIENTS=64  BENCH_MODEL=64-256-256-10  BENCH_PROTOCOL=rest|grpc
//      MODELQ_ONLINE_TRANSPORT=bullmq|streams (passed to the producer; workers serve both)
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { deleteKeysWithPrefix } from '../core/redis.ts';
import { buildMlp } from '../workers/onnx/builder.ts';
import { freePort, pollUntil, spawnNode, stopChild } from './lib/child.ts';
import { runGrpcLoad, runLoad } from './lib/load.ts';
import { grpcInferMessage, inferBody } from './online.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Which part of the stack a function belongs to, from its script's path. */
function areaOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)' || fn === '(program)') return fn;
  if (/node_modules\/bullmq/.test(url)) return 'BullMQ';
  if (/node_modules\/ioredis|node_modules\/@ioredis|redis-parser|cluster-key-slot/.test(url)) return 'Redis client';
  if (/node_modules\/@grpc|node_modules\/protobufjs/.test(url)) return 'gRPC';
  if (/node_modules\/(express|router|body-parser|finalhandler|send|on-finished|qs|raw-body)/.test(url)) return 'express';
  if (/node_modules\/(onnxruntime|zod)/.test(url)) return url.includes('zod') ? 'zod' : 'onnxruntime';
  if (/node_modules\/(tsx|esbuild)/.test(url)) return 'tsx';
  if (/node_modules/.test(url)) return 'other libraries';
  if (/^node:(_http|http|net|stream|internal\/streams|internal\/http)|^node:_http/.test(url) || /http_parser|llhttp/.test(fn)) return 'node http/net/streams';
  if (/^node:/.test(url)) return 'node other';
  if (fn === 'JSON.parse' || fn === 'parse' || fn === 'stringify' || fn === 'JSON.stringify') return 'JSON';
  const m = /\/(producer|workers|core)\/(.*)$/.exec(url);
  if (m) return `modelq ${m[1]}/${m[2]}`;
  return url ? 'other' : `native (${fn || 'anonymous'})`;
}

/** Self time per area and per function, in ms, of the samples taken within `window` (monotonic us, as V8 stamps samples). */
function summarize(p: Profile, window: [number, number]) {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = p.startTime;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t >= window[0] && t <= window[1]) self.set(id, (self.get(id) ?? 0) + dt / 1000);
  });
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    const area = areaOf(f.url, f.functionName);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(producer|workers|core)\//, '$1/')}:${f.lineNumber + 1}`;
    fns.set(name, (fns.get(name) ?? 0) + ms);
  }
  return { areas, fns };
}

const cpuSeconds = (pid: number) => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
};

async function main() {
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  const clients = Number(process.env.BENCH_CLIENTS ?? 64);
  const sizes = (process.env.BENCH_MODEL ?? '64-256-256-10').split('-').map(Number);
  const grpc = process.env.BENCH_PROTOCOL === 'grpc';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-profile-'));
  const prefix = `prof-${crypto.randomBytes(4).toString('hex')}`;
  const [port, grpcPort] = [await freePort(), await freePort()];
  const env = {
    MODELQ_PREFIX: prefix,
    MODELQ_DATA_DIR: path.join(dir, 'data'),
    MODELQ_PORT: String(port),
    MODELQ_GRPC_PORT: String(grpcPort),
    MODELQ_LOG_LEVEL: 'warn',
    MODELQ_ENGINE_THREADS: '1',
    MODELQ_STATS_INTERVAL_MS: '200',
  };
  const prof = (name: string) => ['--cpu-prof', '--cpu-prof-dir', path.join(dir, name)];
  const producer = spawnNode({ args: [...prof('producer'), '--import', 'tsx', 'producer/main.ts'], env, logFile: path.join(dir, 'producer.log') });
  const worker = spawnNode({ args: [...prof('worker'), '--import', 'tsx', 'workers/main.ts'], env, logFile: path.join(dir, 'worker.log') });
  const url = `http://127.0.0.1:${port}`;
  try {
    await pollUntil('the producer', async () => (await fetch(`${url}/v2/health/ready`).catch(() => null))?.status === 200, 60_000, producer);
    const up = await fetch(`${url}/v1/models/m/versions`, { method: 'POST', body: Buffer.from(buildMlp({ sizes, seed: 1 })) });
    if (up.status !== 201) throw new Error(`upload: ${up.status} ${await up.text()}`);
    // Warm the model and the path first, so the profile's window holds the steady state only.
    for (let i = 0; i < 20; i++)
      await (
        await fetch(`${url}/v2/models/m/infer`, { method: 'POST', body: inferBody(sizes[0]!), headers: { 'content-type': 'application/json' } })
      ).arrayBuffer();
    const redisInfo = new Redis(process.env.MODELQ_REDIS_URL ?? 'redis://127.0.0.1:6379');
    const redisCpu = async () => {
      const info = await redisInfo.info('cpu');
      const v = (k: string) => Number(new RegExp(`^${k}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
      return v('used_cpu_user') + v('used_cpu_sys');
    };
    // Coalesced groups (jobs or stream entries) and engine runs, from the worker figures in /metrics.
    const counted = async () => {
      await new Promise((r) => setTimeout(r, 600)); // two publications of the worker figures
      const text = await (await fetch(`${url}/metrics`)).text();
      const sum = (re: RegExp) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
      return {
        groups: sum(/^modelq_worker_jobs_total\{[^}]*queue="infer"[^}]*status="completed"[^}]*\} (\d+)$/gm),
        runs: sum(/^modelq_engine_runs_total\{[^}]*\} (\d+)$/gm),
      };
    };
    const counts0 = await counted();
    const redis0 = await redisCpu();
    const cpu0 = [cpuSeconds(producer.pid!), cpuSeconds(worker.pid!)];
    const client0 = process.cpuUsage();
    const from = Number(process.hrtime.bigint() / 1000n);
    const r = grpc
      ? await runGrpcLoad({
          address: `127.0.0.1:${grpcPort}`,
          method: '/inference.GRPCInferenceService/ModelInfer',
          message: grpcInferMessage('m', sizes[0]!),
          concurrency: clients,
          durationMs: seconds * 1000,
          warmupMs: 1000,
        })
      : await runLoad({ url: `${url}/v2/models/m/infer`, body: inferBody(sizes[0]!), concurrency: clients, durationMs: seconds * 1000, warmupMs: 1000 });
    const cpu1 = [cpuSeconds(producer.pid!), cpuSeconds(worker.pid!)];
    const client1 = process.cpuUsage(client0);
    const to = Number(process.hrtime.bigint() / 1000n);
    const total = r.requests + r.errors;
    const redisUs = (((await redisCpu()) - redis0) * 1e6) / Math.max(1, total);
    redisInfo.disconnect();
    const counts1 = await counted();
    const groups = counts1.groups - counts0.groups;
    const runs = counts1.runs - counts0.runs;
    console.log(
      `${grpc ? 'gRPC' : 'REST'} over ${process.env.MODELQ_ONLINE_TRANSPORT ?? 'streams'}, ${clients} clients, model ${sizes.join('-')}: ${total} requests (${r.errors} errors) in ${seconds + 1} s (1 s of it warm-up); load average ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(
      `coalescing: ${groups} groups (${(total / Math.max(1, groups)).toFixed(1)} requests each), ${runs} engine runs (${(total / Math.max(1, runs)).toFixed(1)} requests each)`,
    );
    console.log(`redis-server: ${redisUs.toFixed(0)} us CPU per request (INFO used_cpu_user + used_cpu_sys; a shared Redis counts its other clients too)`);
    // The load generator shares the cores with the processes under test: what it spends is not theirs.
    console.log(`load client (this process): ${((client1.user + client1.system) / Math.max(1, total)).toFixed(0)} us CPU per request`);
    await stopChild(producer);
    await stopChild(worker);
    ['producer', 'worker'].forEach((name, k) => {
      const files = fs.readdirSync(path.join(dir, name)).map((f) => path.join(dir, name, f));
      // The main thread's profile is the largest; engine threads write their own.
      for (const file of files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)) {
        const { areas, fns } = summarize(JSON.parse(fs.readFileSync(file, 'utf8')) as Profile, [from, to]);
        const busy = [...areas].filter(([a]) => a !== '(idle)').reduce((s, [, ms]) => s + ms, 0);
        if (busy < 1) continue;
        const cpuUs = ((cpu1[k]! - cpu0[k]!) * 1e6) / Math.max(1, total);
        console.log(
          `\n${name} ${path.basename(file)}: ${busy.toFixed(0)} ms busy in the profile; process CPU ${cpuUs.toFixed(0)} us per request (all threads, measured window)`,
        );
        const top = (m: Map<string, number>, n: number) =>
          [...m]
            .filter(([a]) => !a.startsWith('(idle)'))
            .sort((a, b) => b[1] - a[1])
            .slice(0, n);
        for (const [a, ms] of top(areas, 14)) console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${a}`);
        console.log('  heaviest functions (self):');
        for (const [f, ms] of top(fns, 12)) console.log(`  ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${f}`);
      }
    });
    console.log(`\nprofiles: ${dir}`);
  } finally {
    await stopChild(producer).catch(() => {});
    await stopChild(worker).catch(() => {});
    const redis = new Redis(process.env.MODELQ_REDIS_URL ?? 'redis://127.0.0.1:6379');
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  }
}

await main();

// Shadow traffic's cost to the primary: one model version answers every request, over two aliases of
// the same model, one plain and one mirroring 100% of its requests to a second version (producer/
// shadow.ts). Each round loads both aliases in turn with the same closed-loop clients (interleaved,
// MODELQ_BENCH_REPEATS rounds, medians), so a change in the machine's load hits both; the figure is
// the primary's p50 latency with the shadow over without (the issue asks at most +10% under load).
// The same load checks as every suite (bench/lib/fair.ts); a round with errors is reported, and the
// comparison's counters show that the mirrors ran (compared) or were dropped on a full queue.
// Besides wall time, two figures that a loaded machine does not blur: the workers' ordering counters
// (engine lowStats: mirror runs, the times one was held back for primaries, and the primary runs
// that were sent to a thread while a mirror's run was on it, each of which waited at most that one
// small run), and the CPU of the platform's processes per answered request in each alias's rounds.
// Env: BENCH_CLIENTS=16  BENCH_SECONDS=5  BENCH_WARMUP_SECONDS=1  BENCH_WORKERS=1
//      BENCH_SHADOW_MODEL=256-1024-1024-10 (layer widths, input first)
import { Redis } from 'ioredis';
import { readWorkerStats } from '../core/stats.ts';
import { buildMlp } from '../workers/onnx/builder.ts';
import { interleave, median, ratioText } from './lib/fair.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { startPlatform } from './lib/platform.ts';
import { inferBody } from './online.ts';

const envNum = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d);
const envList = (k: string, d: number[]) =>
  process.env[k]
    ?.split(/[,-]/)
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0) ?? d;

async function put(url: string, body: unknown) {
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`PUT ${url}: HTTP ${res.status} ${text.slice(0, 300)}`);
}

export async function benchShadow(): Promise<void> {
  const clients = envList('BENCH_CLIENTS', [16]);
  const seconds = envNum('BENCH_SECONDS', 5);
  const warmup = envNum('BENCH_WARMUP_SECONDS', 1);
  const sizes = envList('BENCH_SHADOW_MODEL', [256, 1024, 1024, 10]);
  // Workers publish their figures (the ordering counters) every 500 ms here, rather than every 5 s.
  const statsInterval = process.env.MODELQ_STATS_INTERVAL_MS;
  process.env.MODELQ_STATS_INTERVAL_MS ??= '500';
  const platform = await startPlatform({ workers: envNum('BENCH_WORKERS', 1) }).finally(() => {
    if (statsInterval === undefined) delete process.env.MODELQ_STATS_INTERVAL_MS;
  });
  const redis = new Redis(process.env.MODELQ_REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  const lowStats = async () => {
    await new Promise((r) => setTimeout(r, 1200)); // two publications
    const sum = { runs: 0, held: 0, primaryRuns: 0, primaryBehindLow: 0 };
    for (const w of await readWorkerStats(redis, `{${platform.prefix}}`))
      for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += w.engine.low?.[k] ?? 0;
    return sum;
  };
  const cpu = () => {
    const c = platform.cpuByProcess();
    return c.producer + c.workers.reduce((a, b) => a + b, 0);
  };
  try {
    await platform.register('shadowed', buildMlp({ sizes, seed: 1 }));
    await platform.register('shadowed', buildMlp({ sizes, seed: 2 }));
    const alias = `${platform.url}/v1/models/shadowed/aliases`;
    await put(`${alias}/plain`, { versions: [{ version: 1, weight: 100 }] });
    await put(`${alias}/mirrored`, { versions: [{ version: 1, weight: 100 }], shadow: { version: 2, fraction: 1 } });
    const body = inferBody(sizes[0]!);
    const url = (a: string) => `${platform.url}/v2/models/shadowed/versions/${a}/infer`;
    // Both versions' sessions loaded before any figure (the serving cache sees the aliases within a second).
    await new Promise((r) => setTimeout(r, 1500));
    for (const a of ['plain', 'mirrored']) {
      const res = await fetch(url(a), { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(60_000) });
      if (!res.ok) throw new Error(`priming ${a}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    }
    const comparison = async () =>
      (await (await fetch(`${platform.url}/v1/models/shadowed/comparisons/1/2`)).json()) as { compared: number; dropped: number; errors: number };
    console.log(
      'clients | p50 plain ms | p50 shadow ms | p50 shadow/plain | +% | rps plain | rps shadow | errors plain/shadow | mirrors compared/dropped/errors',
    );
    for (const c of clients) {
      const runs: { plain: LoadResult[]; shadow: LoadResult[] } = { plain: [], shadow: [] };
      const cpuS = { plain: 0, shadow: 0 };
      const load = async (a: string) => {
        const c0 = cpu();
        const x = await runLoad({ url: url(a), body, concurrency: c, durationMs: seconds * 1000, warmupMs: warmup * 1000 });
        cpuS[a === 'plain' ? 'plain' : 'shadow'] += cpu() - c0;
        return x;
      };
      const before = await comparison();
      const lowBefore = await lowStats();
      // interleave takes higher-is-better figures: the inverse of p50.
      const r = await interleave({
        baseline: async () => {
          const x = await load('plain');
          runs.plain.push(x);
          return 1 / Math.max(x.p50Ms, 1e-6);
        },
        platform: async () => {
          const x = await load('mirrored');
          runs.shadow.push(x);
          return 1 / Math.max(x.p50Ms, 1e-6);
        },
      });
      const after = await comparison();
      const lowAfter = await lowStats();
      const p50 = (xs: LoadResult[]) => median(xs.map((x) => x.p50Ms));
      const rps = (xs: LoadResult[]) => median(xs.map((x) => x.rps));
      const errors = (xs: LoadResult[]) => xs.reduce((n, x) => n + x.errors, 0);
      // The ratio of latencies is the inverse of the ratio interleave took (per round, then the median).
      const slower = 1 / r.ratio;
      console.log(
        [
          c,
          p50(runs.plain).toFixed(2),
          p50(runs.shadow).toFixed(2),
          ratioText(slower),
          `${((slower - 1) * 100).toFixed(1)}%${slower <= 1.1 ? '' : ' (over +10%)'}`,
          rps(runs.plain).toFixed(0),
          rps(runs.shadow).toFixed(0),
          `${errors(runs.plain)}/${errors(runs.shadow)}`,
          `${after.compared - before.compared}/${after.dropped - before.dropped}/${after.errors - before.errors}`,
        ].join(' | '),
      );
      // Warm-up requests are in the CPU too: an estimate per answered request, the same for both aliases.
      const perRequest = (s: number, xs: LoadResult[]) =>
        (
          (s * 1000) /
          Math.max(
            1,
            xs.reduce((n, x) => n + x.requests, 0),
          )
        ).toFixed(2);
      const d = (k: keyof typeof lowAfter) => lowAfter[k] - lowBefore[k];
      console.log(
        `  ${c} clients: mirror runs ${d('runs')}, held back for primaries ${d('held')} times; primary runs sent to a thread running a mirror: ` +
          `${d('primaryBehindLow')} of ${d('primaryRuns')} (${((100 * d('primaryBehindLow')) / Math.max(1, d('primaryRuns'))).toFixed(1)}%); ` +
          `CPU ms per answered request (all processes, warm-up included): plain ${perRequest(cpuS.plain, runs.plain)}, mirrored ${perRequest(cpuS.shadow, runs.shadow)}`,
      );
    }
  } finally {
    redis.disconnect();
    await platform.stop();
  }
}

// Fair comparisons for every benchmark: a ratio of the platform to a baseline means something only
// when both ran on a quiet machine, side by side, more than once. This module is the one place that
// says how; every bench file uses it.
//
// API (small on purpose):
//   startSuite(name)          prints load average and cores; throws NoisyMachine when the 1-min load
//                             is over half the cores, unless MODELQ_BENCH_FORCE=1 (run.ts calls it)
//   endSuite(name)            prints load average and cores after the suite (run.ts calls it)
//   repeats()                 rounds per comparison: MODELQ_BENCH_REPEATS, default 3 (at least 1)
//   bestOfThreads(run)        runs a baseline at 1 and 2 intra-op threads (MODELQ_BENCH_BASELINE_THREADS)
//                             and keeps the best by its `score` (higher is better)
//   interleave({baseline, platform})
//                             `repeats()` rounds of baseline then platform, each returning a
//                             figure (higher is better, e.g. rows/s); medians of each side and the
//                             median of the per-round ratios
//   ratioText(ratio, rounds)  "1.23x (median of 3)", or "1.23x (NOISY: loaded, 1 round)" when forced
//                             on a loaded machine (the load is printed at the start) or when fewer
//                             than 3 rounds were measured
//   median(xs)
//
// Env: MODELQ_BENCH_FORCE=1 (run on a loaded machine; every ratio is labelled), MODELQ_BENCH_REPEATS=3,
//      MODELQ_BENCH_BASELINE_THREADS=1,2.
import os from 'node:os';

export class NoisyMachine extends Error {}

interface Gate {
  load1: number;
  cores: number;
  /** The load was over half the cores when the suite started. */
  noisy: boolean;
  /** MODELQ_BENCH_FORCE=1: run (and label) anyway. */
  forced: boolean;
}

let gate: Gate | undefined;

const cores = () => os.availableParallelism();
const loadText = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/** Before a suite: prints the machine's load and cores, and refuses a loaded machine unless forced. */
export function startSuite(name: string): void {
  const load1 = os.loadavg()[0]!;
  const forced = process.env.MODELQ_BENCH_FORCE === '1';
  gate = { load1, cores: cores(), noisy: load1 > cores() / 2, forced };
  console.log(`${name}: before: load average ${loadText()} (1, 5, 15 min), ${cores()} cores`);
  if (!gate.noisy) return;
  const why = `the 1-min load ${load1.toFixed(2)} is over half the ${cores()} cores`;
  if (!forced) throw new NoisyMachine(`${name}: not run: ${why}; ratios would mean nothing. MODELQ_BENCH_FORCE=1 runs it anyway, every ratio labelled NOISY`);
  console.log(`${name}: MODELQ_BENCH_FORCE=1: running although ${why}; every ratio below is labelled NOISY`);
}

/** After a suite: the machine's load and cores again. */
export function endSuite(name: string): void {
  console.log(`${name}: after: load average ${loadText()} (1, 5, 15 min), ${cores()} cores`);
}

/** Rounds per comparison: MODELQ_BENCH_REPEATS, default 3. */
export function repeats(): number {
  const n = Number(process.env.MODELQ_BENCH_REPEATS);
  return Number.isSafeInteger(n) && n >= 1 ? n : 3;
}

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Intra-op thread settings a baseline is tried at: MODELQ_BENCH_BASELINE_THREADS, default 1,2. */
export function baselineThreads(): number[] {
  const xs = (process.env.MODELQ_BENCH_BASELINE_THREADS ?? '1,2')
    .split(',')
    .map(Number)
    .filter((n) => Number.isSafeInteger(n) && n > 0);
  return xs.length ? xs : [1, 2];
}

/** Runs `run` at each baseline thread setting; the best by `score` (higher is better) is the baseline. */
export async function bestOfThreads<T>(
  run: (threads: number) => Promise<T>,
  score: (t: T) => number,
): Promise<{ best: T; threads: number; all: { threads: number; result: T }[] }> {
  const all: { threads: number; result: T }[] = [];
  for (const threads of baselineThreads()) all.push({ threads, result: await run(threads) });
  const top = all.reduce((a, b) => (score(b.result) > score(a.result) ? b : a));
  return { best: top.result, threads: top.threads, all };
}

export interface Interleaved {
  baseline: number[];
  platform: number[];
  /** platform / baseline of each round. */
  ratios: number[];
  medianBaseline: number;
  medianPlatform: number;
  /** The median of the per-round ratios: drift in the machine's load hits both sides of a round. */
  ratio: number;
}

/**
 * `repeats()` rounds (or `rounds`), each the baseline then the platform, adjacent so that a change
 * in the machine's load hits both; figures are higher-is-better (rows/s, requests/s). For a time,
 * pass its inverse.
 */
export async function interleave(o: {
  baseline: (round: number) => Promise<number>;
  platform: (round: number) => Promise<number>;
  rounds?: number;
}): Promise<Interleaved> {
  const rounds = o.rounds ?? repeats();
  const baseline: number[] = [];
  const platform: number[] = [];
  for (let r = 0; r < rounds; r++) {
    baseline.push(await o.baseline(r));
    platform.push(await o.platform(r));
  }
  const ratios = platform.map((p, i) => (baseline[i]! > 0 ? p / baseline[i]! : NaN));
  return { baseline, platform, ratios, medianBaseline: median(baseline), medianPlatform: median(platform), ratio: median(ratios) };
}

/** A ratio as reported: "1.23x", labelled NOISY when measured on a loaded machine (forced) or in fewer than 3 rounds. */
export function ratioText(ratio: number, rounds = repeats(), digits = 2): string {
  const text = `${ratio.toFixed(digits)}x`;
  const why: string[] = [];
  if (gate?.noisy) why.push('loaded');
  if (rounds < 3) why.push(`${rounds} round${rounds === 1 ? '' : 's'}`);
  return why.length ? `${text} (NOISY: ${why.join(', ')})` : `${text} (median of ${rounds})`;
}

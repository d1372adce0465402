// bench/lib/fair.ts: the load gate, interleaved rounds, the best of thread settings and how ratios
// are labelled. os.loadavg is stubbed: the gate's subject is what it does with the figure.
import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bestOfThreads, interleave, median, NoisyMachine, ratioText, repeats, startSuite } from '../../../bench/lib/fair.ts';

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

const quiet = () => vi.spyOn(os, 'loadavg').mockReturnValue([os.availableParallelism() / 4, 0, 0]);
const loaded = () => vi.spyOn(os, 'loadavg').mockReturnValue([os.availableParallelism(), 0, 0]);

describe('bench fairness', () => {
  it('refuses a suite when the 1-min load is over half the cores, unless forced; then ratios say NOISY', () => {
    vi.spyOn(console, 'log').mockImplementation(() => {});
    loaded();
    vi.stubEnv('MODELQ_BENCH_FORCE', '');
    expect(() => startSuite('x')).toThrow(NoisyMachine);
    vi.stubEnv('MODELQ_BENCH_FORCE', '1');
    startSuite('x');
    expect(ratioText(1.234, 3)).toBe('1.23x (NOISY: loaded)');
    quiet();
    startSuite('x');
    expect(ratioText(1.234, 3)).toBe('1.23x (median of 3)');
    expect(ratioText(1.234, 1)).toBe('1.23x (NOISY: 1 round)');
  });

  it('alternates baseline and platform for the configured rounds and reports the median per-round ratio', async () => {
    vi.stubEnv('MODELQ_BENCH_REPEATS', '5');
    expect(repeats()).toBe(5);
    const order: string[] = [];
    const base = [10, 10, 100, 10, 10];
    const plat = [20, 20, 20, 30, 20];
    const r = await interleave({
      baseline: async (i) => (order.push(`b${i}`), base[i]!),
      platform: async (i) => (order.push(`p${i}`), plat[i]!),
    });
    expect(order).toEqual(['b0', 'p0', 'b1', 'p1', 'b2', 'p2', 'b3', 'p3', 'b4', 'p4']);
    expect(r.medianBaseline).toBe(10);
    expect(r.medianPlatform).toBe(20);
    expect(r.ratio).toBe(2); // the round where the baseline was disturbed does not move it
    expect(median([3, 1, 2, 4])).toBe(2.5);
  });

  it('takes the best of 1 and 2 threads as the baseline (MODELQ_BENCH_BASELINE_THREADS to change them)', async () => {
    const b = await bestOfThreads(
      async (t) => ({ rps: t === 1 ? 50 : 80 }),
      (x) => x.rps,
    );
    expect(b.all.map((x) => x.threads)).toEqual([1, 2]);
    expect(b).toMatchObject({ threads: 2, best: { rps: 80 } });
    vi.stubEnv('MODELQ_BENCH_BASELINE_THREADS', '1,4');
    expect(
      (
        await bestOfThreads(
          async (t) => t,
          (t) => -t,
        )
      ).threads,
    ).toBe(1);
  });
});

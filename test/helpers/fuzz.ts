// A small seeded fuzzing kit: a PRNG (mulberry32), picks, and the case count (a fixed number in
// CI; MODELQ_FUZZ_CASES for longer runs). A failure names its seed, so it replays exactly.

export type Rand = {
  /** In [0, 1). */
  (): number;
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  bytes(n: number): Uint8Array;
};

export function rand(seed: number): Rand {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = next as Rand;
  r.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  r.pick = (xs) => xs[Math.floor(next() * xs.length)]!;
  r.bytes = (n) => Uint8Array.from({ length: n }, () => Math.floor(next() * 256));
  return r;
}

/** Cases per property: `ci` unless MODELQ_FUZZ_CASES says more (or fewer). */
export function fuzzCases(ci: number): number {
  const n = Number(process.env.MODELQ_FUZZ_CASES);
  return Number.isSafeInteger(n) && n > 0 ? n : ci;
}

/** First seed: MODELQ_FUZZ_SEED replays a reported failure (with MODELQ_FUZZ_CASES=1). */
export const fuzzSeed = (): number => Number(process.env.MODELQ_FUZZ_SEED) || 1;

/** Numbers a count or length field gets in a hostile file. */
export const HOSTILE_COUNTS = [0, 1, 2, 7, 8, 255, 65_535, 1_000_000, 100_000_000, 2 ** 31 - 1, -1, -(2 ** 31)] as const;

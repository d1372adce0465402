// Misspelled settings: an environment key that starts with MODELQ_ but is neither a configuration
// key nor one of the client and test keys below is a configuration problem naming the closest key,
// so `MODELQ_WORKER=4` stops the platform instead of starting it with the default.

/**
 * MODELQ_* variables that are not platform settings but are read by someone else in the same
 * shell: the `modelq` command, docker-compose, the test and benchmark harnesses. They are allowed
 * in the environment of every process (a shell that exports MODELQ_URL for the CLI still starts
 * the platform).
 */
export const CLIENT_KEYS: Readonly<Record<string, string>> = {
  MODELQ_URL: 'the `modelq` command: the producer URL',
  MODELQ_API_KEY: 'the `modelq` command: the API key it sends',
  MODELQ_KEYS_FILE: 'docker-compose: the API keys file mounted as a secret',
  MODELQ_TEST_FAULTS: 'tests: fault injection',
  MODELQ_TEST_REDIS_URL: 'tests: the Redis of the dashboard tests',
  MODELQ_FUZZ_CASES: 'tests: fuzz cases per property',
  MODELQ_FUZZ_SEED: 'tests: fuzz seed',
  MODELQ_FUZZ_TRACE: 'tests: fuzz trace',
  MODELQ_CHAOS_SEED: 'tests: chaos seed',
  MODELQ_SOAK_S: 'tests: soak duration',
  MODELQ_BENCH_FORCE: 'benchmarks: run on a loaded machine, ratios labelled NOISY',
  MODELQ_BENCH_REPEATS: 'benchmarks: interleaved rounds per comparison',
  MODELQ_BENCH_BASELINE_THREADS: 'benchmarks: onnxruntime thread settings the baseline tries',
};

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/** The known key closest to `key`: one it begins or that begins it first (MODELQ_REDIS -> MODELQ_REDIS_URL), else by edit distance. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const prefixed = known
    .filter((k) => k.startsWith(key) || key.startsWith(k))
    .sort((a, b) => Math.abs(a.length - key.length) - Math.abs(b.length - key.length));
  if (prefixed[0]) return prefixed[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  // Far from everything: a guess would mislead more than help.
  return bestD <= Math.max(3, Math.floor(key.length / 3)) ? best : undefined;
}

/** A problem line for each unknown MODELQ_* key of `env`. */
export function unknownKeyProblems(env: NodeJS.ProcessEnv, known: readonly string[]): string[] {
  const all = [...known, ...Object.keys(CLIENT_KEYS)];
  const set = new Set(all);
  return Object.keys(env)
    .filter((k) => k.startsWith('MODELQ_') && !set.has(k))
    .sort()
    .map((k) => {
      const near = closestKey(k, all);
      return `${k}: not a configuration key${near ? `; did you mean ${near}?` : ''} (the keys are listed in docs/operations.md, Configuration)`;
    });
}

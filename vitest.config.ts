import { defineConfig } from 'vitest/config';

// Four projects (`npx vitest run --project unit` for quick feedback; `npm test` runs them all, one
// group after another, so integration, chaos and browser files never share the 2 cores of CI):
// - unit: no Redis, no worker processes; files may run in parallel.
// - integration: real Redis and onnxruntime, worker processes and engine threads.
// - chaos: kills workers, restarts Redis, soaks.
// - browser: the dashboard in a real browser.
const heavy = (name: string, groupOrder: number) => ({
  extends: true as const,
  test: {
    name,
    include: [`test/${name}/**/*.test.ts`],
    sequence: { groupOrder },
    // Integration tests start worker processes and engine threads; on 2 cores running files one
    // after another is faster than contending for CPU.
    fileParallelism: false,
  },
});

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 } } },
      heavy('integration', 1),
      heavy('chaos', 2),
      heavy('browser', 3),
    ],
  },
});

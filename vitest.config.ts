import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Integration tests start worker processes and engine threads; on 2 cores running files one
    // after another is faster than contending for CPU.
    fileParallelism: false,
  },
});

// The defaults that divide the machine: one engine thread per core across MODELQ_WORKERS processes.
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../../core/config.ts';

const cores = Math.max(1, os.availableParallelism());

describe('core-count defaults', () => {
  it('divides the cores among the worker processes, one engine thread each at least', () => {
    for (const workers of [1, 2, 3, 64]) {
      const cfg = loadConfig({ MODELQ_WORKERS: String(workers) });
      expect(cfg.MODELQ_ENGINE_THREADS).toBe(Math.max(1, Math.floor(cores / workers)));
      expect(cfg.MODELQ_SCORE_CONCURRENCY).toBe(Math.max(2, cfg.MODELQ_ENGINE_THREADS + 1));
      expect(cfg.MODELQ_ENGINE_INTRA_OP_THREADS).toBe(1);
    }
    expect(loadConfig({}).MODELQ_WORKERS).toBe(Math.min(2, cores));
  });

  it('keeps values that are set', () => {
    const cfg = loadConfig({ MODELQ_WORKERS: '1', MODELQ_ENGINE_THREADS: '3', MODELQ_SCORE_CONCURRENCY: '7' });
    expect(cfg).toMatchObject({ MODELQ_ENGINE_THREADS: 3, MODELQ_SCORE_CONCURRENCY: 7 });
  });
});

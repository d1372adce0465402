// The defaults that divide the machine: one engine thread per core across MODELQ_WORKERS processes.
// The core count is pinned (node:os mocked before core/config.ts loads), so the expected values are
// written out by hand for an 8-core and a 1-core machine, not computed with the production formula.
import { afterEach, describe, expect, it, vi } from 'vitest';

async function configOn(cores: number) {
  vi.resetModules();
  vi.doMock('node:os', async (original) => {
    const os = await original<typeof import('node:os')>();
    const pinned = { ...os, availableParallelism: () => cores };
    return { ...pinned, default: pinned };
  });
  return (await import('../../../core/config.ts')).loadConfig;
}

afterEach(() => {
  vi.doUnmock('node:os');
  vi.resetModules();
});

describe('core-count defaults', () => {
  it('on 8 cores: 2 workers by default, 8 / workers engine threads each, one more score slot than threads', async () => {
    const loadConfig = await configOn(8);
    const pick = (env: Record<string, string>) => {
      const c = loadConfig(env);
      return [c.MODELQ_WORKERS, c.MODELQ_ENGINE_THREADS, c.MODELQ_SCORE_CONCURRENCY, c.MODELQ_ENGINE_INTRA_OP_THREADS];
    };
    expect(pick({})).toEqual([2, 4, 5, 1]);
    expect(pick({ MODELQ_WORKERS: '1' })).toEqual([1, 8, 9, 1]);
    expect(pick({ MODELQ_WORKERS: '3' })).toEqual([3, 2, 3, 1]);
    expect(pick({ MODELQ_WORKERS: '64' })).toEqual([64, 1, 2, 1]);
  });

  it('on 1 core: one worker, one engine thread, and still two score slots', async () => {
    const loadConfig = await configOn(1);
    const c = loadConfig({});
    expect([c.MODELQ_WORKERS, c.MODELQ_ENGINE_THREADS, c.MODELQ_SCORE_CONCURRENCY]).toEqual([1, 1, 2]);
    const four = loadConfig({ MODELQ_WORKERS: '4' });
    expect([four.MODELQ_ENGINE_THREADS, four.MODELQ_SCORE_CONCURRENCY]).toEqual([1, 2]);
  });

  it('keeps values that are set', async () => {
    const loadConfig = await configOn(8);
    const cfg = loadConfig({ MODELQ_WORKERS: '1', MODELQ_ENGINE_THREADS: '3', MODELQ_SCORE_CONCURRENCY: '7' });
    expect(cfg).toMatchObject({ MODELQ_ENGINE_THREADS: 3, MODELQ_SCORE_CONCURRENCY: 7 });
  });
});

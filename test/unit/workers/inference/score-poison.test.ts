// A chunk lost with its worker more often than MODELQ_POISON_ATTEMPTS (it took the worker down each
// time) is not started again: it fails for good and fails its batch, saying why.
import { describe, expect, it } from 'vitest';
import type { BatchStore } from '../../../../core/batches.ts';
import { fromFailedReason } from '../../../../core/errors.ts';
import type { Engine } from '../../../../workers/engine/engine.ts';
import { scoreProcessor } from '../../../../workers/inference/score.ts';
import type { ArtifactStore } from '../../../../core/storage/index.ts';

function deps() {
  const failed: string[] = [];
  const batches = {
    spec: async () => ({ id: 'b1' }),
    status: async () => 'running',
    transition: async () => 'running',
    fail: async (_id: string, reason: string) => void failed.push(reason),
  } as unknown as BatchStore;
  return {
    failed,
    deps: {
      engine: {} as Engine,
      store: {} as ArtifactStore,
      batches,
      cfg: { MODELQ_MAX_ROW_BYTES: 1024, MODELQ_POISON_ATTEMPTS: 2 },
    },
  };
}

const job = (attemptsStarted: number, attemptsMade: number) => ({
  data: { batchId: 'b1', index: 4, start: 0, end: 10, firstRow: 0, rows: 1 },
  updateProgress: async () => {},
  attemptsStarted,
  attemptsMade,
  opts: { attempts: 5 },
});

describe('score: chunks lost with their worker', () => {
  it('fails for good once lost more often than MODELQ_POISON_ATTEMPTS, failing its batch', async () => {
    const d = deps();
    const err = await scoreProcessor(job(4, 0), d.deps).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.name).toBe('UnrecoverableError');
    expect(fromFailedReason(err!.message).message).toMatch(/chunk 4 was lost with its worker 3 times .*MODELQ_POISON_ATTEMPTS=2/);
    expect(d.failed).toHaveLength(1);
    expect(d.failed[0]).toMatch(/^chunk 4 failed: chunk 4 was lost with its worker 3 times/);
  });
});

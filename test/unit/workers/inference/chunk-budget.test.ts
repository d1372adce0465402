// A batch chunk's budget: its deadline and its batch's cancel stop it with a reason that names why,
// and the attempts rule fails a chunk for good after MODELQ_POISON_ATTEMPTS budget failures or lost starts.
import { describe, expect, it } from 'vitest';
import { fromFailedReason } from '../../../../core/errors.ts';
import { EngineFault } from '../../../../workers/engine/budget.ts';
import { budgetFailure, ChunkBudget, ChunkStopped, lostStarts } from '../../../../workers/inference/chunk-budget.ts';

const stopped = (b: ChunkBudget) => new Promise<Error>((r) => b.signal.addEventListener('abort', () => r(b.reason!), { once: true }));

describe('chunk budget', () => {
  it('stops the chunk at its deadline, naming MODELQ_CHUNK_TIMEOUT_MS', async () => {
    const b = new ChunkBudget({ batchId: 'b', index: 3 }, 50, { status: async () => 'running' });
    try {
      const why = await stopped(b);
      expect(why).toBeInstanceOf(EngineFault);
      expect(why.message).toBe('chunk 3 exceeded its time limit of 50 ms (MODELQ_CHUNK_TIMEOUT_MS); its engine work was stopped');
      expect(() => b.check()).toThrow(why);
      expect(b.task()).toMatchObject({ timeoutMs: 50, limit: 'MODELQ_CHUNK_TIMEOUT_MS', signal: b.signal });
    } finally {
      b.dispose();
    }
  });

  it('stops the chunk when its batch is cancelled meanwhile', async () => {
    let status = 'running';
    const b = new ChunkBudget({ batchId: 'b', index: 0 }, 600_000, { status: async () => status as 'running' });
    try {
      status = 'cancelling';
      const why = await stopped(b);
      expect(why).toBeInstanceOf(ChunkStopped);
      expect((why as ChunkStopped).status).toBe('cancelling');
    } finally {
      b.dispose();
    }
  });

  it("follows the worker's own abort (shutdown) with a retryable reason", async () => {
    const ac = new AbortController();
    const b = new ChunkBudget({ batchId: 'b', index: 0 }, 600_000, { status: async () => 'running' }, ac.signal);
    try {
      const why = stopped(b);
      ac.abort();
      expect(await why).toMatchObject({ code: 'unavailable', retryable: true });
    } finally {
      b.dispose();
    }
  });

  it('retries a budget failure until MODELQ_POISON_ATTEMPTS, then fails it for good', () => {
    const fault = new EngineFault('timeout', 'scoring a segment exceeded its time limit', 'time');
    const first = budgetFailure(fault, { attemptsMade: 0 }, 2)!;
    expect(first.name).toBe('Error');
    expect(fromFailedReason(first.message)).toMatchObject({ code: 'timeout', retryable: true, message: expect.stringContaining('(attempt 1 of 2)') });
    const last = budgetFailure(fault, { attemptsMade: 1 }, 2)!;
    expect(last.name).toBe('UnrecoverableError');
    expect(fromFailedReason(last.message).message).toMatch(/attempt 2 of MODELQ_POISON_ATTEMPTS=2; not tried again/);
    expect(budgetFailure(new Error('other'), { attemptsMade: 0 }, 2)).toBeNull();
  });

  it('counts the starts that never ended (a worker lost mid-chunk)', () => {
    expect(lostStarts({ attemptsStarted: 1, attemptsMade: 0 })).toBe(0);
    expect(lostStarts({ attemptsStarted: 3, attemptsMade: 1 })).toBe(1);
    expect(lostStarts({ attemptsStarted: 3, attemptsMade: 0 })).toBe(2);
    expect(lostStarts({})).toBe(0);
  });
});

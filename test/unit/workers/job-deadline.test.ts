// A job's time limit: a step that outlives it fails with the limit named, and checks between steps
// fail once it has passed.
import { describe, expect, it } from 'vitest';
import { JobDeadline } from '../../../workers/job-deadline.ts';

describe('job deadline', () => {
  it('fails a step that outlives the limit, naming the setting', async () => {
    const d = new JobDeadline(20, 'MODELQ_COMPRESS_TIMEOUT_S', 'the compression', '0.02 s');
    const never = new Promise<never>(() => {});
    await expect(d.race(never)).rejects.toMatchObject({
      code: 'timeout',
      retryable: false,
      message: 'the compression exceeded its time limit of 0.02 s (MODELQ_COMPRESS_TIMEOUT_S) and was stopped',
    });
    expect(d.passed).toBe(true);
    expect(() => d.check()).toThrow(/MODELQ_COMPRESS_TIMEOUT_S/);
  });

  it('passes a step that ends first, and its failure', async () => {
    const d = new JobDeadline(60_000, 'MODELQ_VALIDATE_TIMEOUT_MS', 'checking the file');
    await expect(d.race(Promise.resolve(7))).resolves.toBe(7);
    await expect(d.race(Promise.reject(new Error('bad line')))).rejects.toThrow('bad line');
    expect(() => d.check()).not.toThrow();
  });
});

// JobAnswers: answers arrive through one pair of listeners; a missed event does not turn a
// finished job into a timeout, because the job itself is read before giving up.
import { EventEmitter } from 'node:events';
import type { Queue, QueueEvents } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { AppError, toFailedReason } from '../../../core/errors.ts';
import { JobAnswers } from '../../../producer/await-job.ts';

function setup(stored: Record<string, { state: string; returnvalue?: unknown; failedReason?: string }> = {}) {
  const events = new EventEmitter();
  const queue = {
    getJobState: async (id: string) => stored[id]?.state ?? 'unknown',
    getJob: async (id: string) => stored[id],
  } as unknown as Queue;
  return { events, answers: new JobAnswers(queue, events as unknown as QueueEvents) };
}

describe('JobAnswers', () => {
  it('resolves with the return value of the job it waits for, and ignores others and repeats', async () => {
    const { events, answers } = setup();
    const a = answers.wait('a', 5000, 'inference');
    const b = answers.wait('b', 5000, 'inference');
    events.emit('completed', { jobId: 'other', returnvalue: 0 });
    events.emit('completed', { jobId: 'b', returnvalue: 2 });
    events.emit('completed', { jobId: 'a', returnvalue: 1 });
    events.emit('completed', { jobId: 'a', returnvalue: 'again' }); // a job run twice answers twice
    expect(await Promise.all([a, b])).toEqual([1, 2]);
  });

  it('rejects with the AppError encoded in the failure reason', async () => {
    const { events, answers } = setup();
    const a = answers.wait('a', 5000, 'inference');
    events.emit('failed', { jobId: 'a', failedReason: toFailedReason(new AppError('bad_request', 'no such input')) });
    await expect(a).rejects.toMatchObject({ code: 'bad_request', message: 'no such input' });
  });

  it('after the timeout, answers from the stored job when its event was missed', async () => {
    const { answers } = setup({
      done: { state: 'completed', returnvalue: { ok: 1 } },
      bad: { state: 'failed', failedReason: toFailedReason(new AppError('invalid_model', 'broken')) },
    });
    await expect(answers.wait('done', 20, 'inference')).resolves.toEqual({ ok: 1 });
    await expect(answers.wait('bad', 20, 'inference')).rejects.toMatchObject({ code: 'invalid_model' });
  });

  it('times out with a 504 when the job has not finished', async () => {
    const { answers } = setup({ slow: { state: 'active' } });
    await expect(answers.wait('slow', 20, 'inference')).rejects.toMatchObject({ code: 'timeout', message: 'inference timed out after 20 ms' });
  });
});

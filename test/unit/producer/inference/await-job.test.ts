// JobAnswers: answers arrive through one pair of listeners; a missed event does not turn a
// finished job into a timeout, because the job itself is read before giving up. A model load the
// worker reports in the job's progress is not counted against the timeout, and a timeout during a
// load is a 503 with Retry-After. Fake timers: nothing here depends on the machine's speed.
import { EventEmitter } from 'node:events';
import type { Queue, QueueEvents } from 'bullmq';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AppError, toFailedReason } from '../../../../core/errors.ts';
import { JobAnswers, loadRetryAfterS } from '../../../../producer/inference/await-job.ts';
import { retryAfterOf } from '../../../../producer/inference/backpressure.ts';

function setup(stored: Record<string, { state: string; returnvalue?: unknown; failedReason?: string; progress?: unknown }> = {}) {
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

  describe('model loads', () => {
    afterEach(() => void vi.useRealTimers());

    it('does not count a reported load against the timeout', async () => {
      vi.useFakeTimers();
      const { events, answers } = setup({ j: { state: 'active' } });
      const settled = vi.fn();
      const a = answers.wait('j', 1000, 'inference');
      a.then(settled, settled);
      await vi.advanceTimersByTimeAsync(400);
      events.emit('progress', { jobId: 'j', data: { model: 'big@1', loading: Date.now() } });
      await vi.advanceTimersByTimeAsync(300);
      events.emit('progress', { jobId: 'j', data: { model: 'big@1', loaded: 300 } });
      // 1000 ms after the request, but only 700 ms of it were not the load: still waiting.
      await vi.advanceTimersByTimeAsync(500);
      expect(settled).not.toHaveBeenCalled();
      // Due at 1300 ms: then it is a timeout as usual.
      await vi.advanceTimersByTimeAsync(150);
      expect(settled).toHaveBeenCalledTimes(1);
      await expect(a).rejects.toMatchObject({ code: 'timeout', httpStatus: 504 });
    });

    it('answers 503 with Retry-After when the timeout passes while the model is still loading', async () => {
      vi.useFakeTimers();
      const { events, answers } = setup({ j: { state: 'active' } });
      const a = answers.wait('j', 1000, 'inference');
      a.catch(() => {});
      await vi.advanceTimersByTimeAsync(100);
      events.emit('progress', { jobId: 'j', data: { model: 'big@1', loading: Date.now() } });
      events.emit('progress', { jobId: 'other', data: { model: 'x@1', loaded: 5 } }); // another job's progress changes nothing
      events.emit('progress', { jobId: 'j', data: 50 }); // nor a plain percentage
      await vi.advanceTimersByTimeAsync(2000);
      await expect(a).rejects.toMatchObject({ code: 'unavailable', httpStatus: 503, message: expect.stringContaining('big@1 is still loading') });
      const e = await a.catch((x: unknown) => x);
      expect(retryAfterOf(e)).toBe(1); // loading for 0.9 s when it timed out: come back in about that long
    });

    it('reads the load from the stored job when its progress event was missed', async () => {
      vi.useFakeTimers();
      const { answers } = setup({ j: { state: 'active', progress: { model: 'big@1', loading: Date.now() - 4500 } } });
      const a = answers.wait('j', 20, 'inference').catch((x: unknown) => x);
      await vi.advanceTimersByTimeAsync(20);
      const e = await a;
      expect(e).toMatchObject({ code: 'unavailable', httpStatus: 503 });
      expect(retryAfterOf(e)).toBe(5);
    });

    it('asks for at least 1 s and at most 30 s', () => {
      expect([0, 10, 1000, 1001, 29_500, 600_000].map(loadRetryAfterS)).toEqual([1, 1, 1, 2, 30, 30]);
    });
  });
});

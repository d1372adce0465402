// The producer's coalescer with a stub queue: which requests travel together, when a job leaves,
// and how answers (and failures) find their requests.
import { EventEmitter } from 'node:events';
import type { Queue, QueueEvents } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { AppError, toFailedReason } from '../../../../core/errors.ts';
import type { Batching, InferJob, InferRequest } from '../../../../core/jobs/infer.ts';
import type { VersionRecord } from '../../../../core/registry.ts';
import { JobAnswers } from '../../../../producer/inference/await-job.ts';
import { InferCoalescer } from '../../../../producer/inference/coalescer.ts';
import { BullmqSender } from '../../../../producer/inference/senders.ts';

const model: VersionRecord = {
  name: 'm',
  version: 1,
  sha256: 'a'.repeat(64),
  bytes: 1,
  createdAt: '',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }],
};
const batching = (o: Partial<Batching> = {}): Batching => ({ maxBatch: 64, maxDelayMs: 40, instances: 2, batchable: true, ...o });
const request = (v: number, rows = 1): InferRequest => ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 2], data: Array(rows * 2).fill(v) }] });

/** A queue that records added jobs; `answer` completes one the way QueueEvents reports it. */
function stubQueue() {
  const events = new EventEmitter();
  const jobs: { id: string; data: InferJob; at: number }[] = [];
  const queue = {
    add: async (_name: string, data: InferJob, opts: { jobId: string }) => {
      jobs.push({ id: opts.jobId, data, at: performance.now() });
      return { id: opts.jobId };
    },
  } as unknown as Queue;
  const echo = (id: string) => {
    const job = jobs.find((j) => j.id === id)!;
    events.emit('completed', { jobId: id, returnvalue: { responses: job.data.requests.map((r) => ({ ok: true, outputs: r.inputs })) } });
  };
  const answers = new JobAnswers(queue, events as unknown as QueueEvents);
  return { queue, events, jobs, echo, coalescer: new InferCoalescer(new BullmqSender(queue, answers, 5000), 5000) };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('InferCoalescer', () => {
  it('sends a lone request to an idle model at once, without waiting maxDelayMs', async () => {
    const s = stubQueue();
    const answer = s.coalescer.submit(model, batching({ maxDelayMs: 60_000 }), request(1));
    // Added within one turn of the event loop: a coalescer that waited for maxDelayMs (or any
    // timer) would have no job yet. That is the whole bound; no clock is needed.
    await tick();
    expect(s.jobs).toHaveLength(1);
    expect(s.jobs[0]!.data.requests).toHaveLength(1);
    s.echo(s.jobs[0]!.id);
    expect(await answer).toMatchObject({ ok: true, outputs: [{ data: [1, 1] }] });
  });

  it('groups requests that arrive together into one job and gives each its own answer', async () => {
    const s = stubQueue();
    const answers = [1, 2, 3].map((v) => s.coalescer.submit(model, batching(), request(v)));
    await tick();
    expect(s.jobs).toHaveLength(1);
    const job = s.jobs[0]!;
    expect(job.data).toMatchObject({ model: { name: 'm', version: 1 }, packed: true });
    expect(job.data.requests).toHaveLength(3);
    expect(job.data.requests[0]!.deadline).toBeGreaterThan(Date.now());
    s.echo(job.id);
    expect((await Promise.all(answers)).map((a) => (a.ok ? a.outputs[0] : null))).toMatchObject([1, 2, 3].map((v) => ({ data: [v, v] })));
  });

  it('while a job is in flight, gathers for maxDelayMs, and at maxBatch rows sends at once', async () => {
    const s = stubQueue();
    const first = s.coalescer.submit(model, batching({ maxBatch: 4 }), request(0));
    await tick();
    expect(s.jobs).toHaveLength(1); // in flight from now on
    const gathered = [1, 2].map((v) => s.coalescer.submit(model, batching({ maxBatch: 4 }), request(v)));
    await tick();
    expect(s.jobs).toHaveLength(1); // waiting for company
    const full = s.coalescer.submit(model, batching({ maxBatch: 4 }), request(3, 2)); // 4 rows: no more waiting
    await tick();
    expect(s.jobs).toHaveLength(2);
    expect(s.jobs[1]!.data.requests).toHaveLength(3);
    const big = s.coalescer.submit(model, batching({ maxBatch: 4, maxDelayMs: 1 }), request(4, 3));
    const over = s.coalescer.submit(model, batching({ maxBatch: 4, maxDelayMs: 1 }), request(5, 2)); // 3 + 2 > 4: a new job
    await new Promise((r) => setTimeout(r, 20));
    expect(s.jobs.slice(2).map((j) => j.data.requests.length)).toEqual([1, 1]);
    for (const j of s.jobs) s.echo(j.id);
    await Promise.all([first, ...gathered, full, big, over]);
  });

  it('does not send a request whose client went away, and rejects it', async () => {
    const s = stubQueue();
    const gone = expect(s.coalescer.submit(model, batching(), request(1), () => true)).rejects.toMatchObject({ code: 'timeout' });
    const kept = s.coalescer.submit(model, batching(), request(2), () => false);
    await tick();
    await gone;
    expect(s.jobs[0]!.data.requests).toHaveLength(1);
    s.echo(s.jobs[0]!.id);
    await expect(kept).resolves.toMatchObject({ ok: true });
  });

  it('fails every request of a failed job with the error its processor raised', async () => {
    const s = stubQueue();
    const answers = [1, 2].map((v) => s.coalescer.submit(model, batching(), request(v)));
    await tick();
    s.events.emit('failed', { jobId: s.jobs[0]!.id, failedReason: toFailedReason(new AppError('invalid_model', 'broken file')) });
    for (const a of answers) await expect(a).rejects.toMatchObject({ code: 'invalid_model', message: 'broken file' });
  });

  it('fails the requests when the job cannot be added', async () => {
    const s = stubQueue();
    (s.queue as unknown as { add: () => Promise<never> }).add = () => Promise.reject(new Error('Redis is down'));
    await expect(s.coalescer.submit(model, batching(), request(1))).rejects.toThrow('Redis is down');
  });
});

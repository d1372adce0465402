// How a coalesced group of online requests reaches a worker and its answers come back
// (MODELQ_ONLINE_TRANSPORT): as a BullMQ job whose answer arrives through QueueEvents, or as an
// entry of raw tensor bytes on the queue's Redis Stream whose answer a worker publishes on this
// producer's channel (stream-sender.ts). The coalescer sees only this interface.
import crypto from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Batching, InferJob, InferRequest, InferResult, ModelTarget } from '../../core/jobs/infer.ts';
import type { WireRequest, WireResponse } from '../../core/jobs/online-wire.ts';
import type { JobAnswers } from './await-job.ts';

export interface Group {
  model: ModelTarget;
  batching: Batching;
  requests: WireRequest[];
}

export interface GroupSender {
  /** Resolves with one response per request, in order; rejects (timeout, unavailable) for the whole group. */
  send(group: Group): Promise<WireResponse[]>;
  /** How this transport wants numeric tensors: base64 text in JSON job data, or raw bytes. */
  readonly tensors: 'packed' | 'bytes';
}

/** A unique id prefix per producer process, so that job and entry ids never collide between producers. */
export const senderIdPrefix = () => `i${crypto.randomBytes(5).toString('hex')}-`;

export class BullmqSender implements GroupSender {
  readonly tensors = 'packed';
  // Job ids are chosen here so the answer is awaited before the job exists (see JobAnswers).
  private readonly idPrefix = senderIdPrefix();
  private seq = 0;

  constructor(
    private readonly queue: Queue,
    private readonly answers: JobAnswers,
    private readonly timeoutMs: number,
    /** BullMQ priority of the jobs (shadow mirrors): taken only after every job without one. */
    private readonly priority?: number,
  ) {}

  async send(g: Group): Promise<WireResponse[]> {
    const jobId = `${this.idPrefix}${++this.seq}`;
    // The service packs requests as base64 for this transport (tensors: 'packed'): they are job data.
    const data: InferJob = { model: g.model, batching: g.batching, packed: true, requests: g.requests as InferRequest[] };
    const answer = this.answers.wait<InferResult>(jobId, this.timeoutMs, 'inference');
    this.queue.add('infer', data, this.priority ? { jobId, priority: this.priority } : { jobId }).catch((e: Error) => this.answers.cancel(jobId, e));
    return (await answer).responses;
  }
}

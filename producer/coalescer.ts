// Producer-side coalescing: online requests for the same model version that arrive within
// maxDelayMs (or until maxBatch rows) travel as one `infer` job, because BullMQ moves only a few
// thousand jobs per second and a job per request would cap the platform below onnxruntime.
import type { Queue, QueueEvents } from 'bullmq';
import { AppError } from '../core/errors.ts';
import type { Batching, InferJob, InferRequest, InferResponse, InferResult } from '../core/jobs/infer.ts';
import type { VersionRecord } from '../core/registry.ts';
import { awaitJob } from './await-job.ts';

interface Waiter {
  request: InferRequest;
  rows: number;
  signal?: AbortSignal;
  resolve: (r: InferResponse) => void;
  reject: (e: Error) => void;
}

interface Group { model: VersionRecord; batching: Batching; waiters: Waiter[]; rows: number; timer?: NodeJS.Timeout }

export class InferCoalescer {
  private readonly groups = new Map<string, Group>();
  jobsSent = 0;

  constructor(private readonly queue: Queue, private readonly events: QueueEvents, private readonly timeoutMs: number) {}

  /** Resolves with this request's answer; rejects with 504 after the timeout. */
  submit(model: VersionRecord, batching: Batching, request: InferRequest, signal?: AbortSignal): Promise<InferResponse> {
    const key = `${model.name}@${model.version}`;
    const rows = batching.batchable ? request.inputs[0]?.shape[0] ?? 1 : 1;
    return new Promise((resolve, reject) => {
      let g = this.groups.get(key);
      if (!g) {
        g = { model, batching, waiters: [], rows: 0 };
        this.groups.set(key, g);
      }
      g.batching = batching;
      g.waiters.push({ request: { ...request, deadline: Date.now() + this.timeoutMs }, rows, signal, resolve, reject });
      g.rows += rows;
      if (g.rows >= batching.maxBatch || batching.maxDelayMs === 0) this.flush(key, g);
      else g.timer ??= setTimeout(() => this.flush(key, g), batching.maxDelayMs);
    });
  }

  private flush(key: string, g: Group) {
    if (this.groups.get(key) === g) this.groups.delete(key);
    if (g.timer) clearTimeout(g.timer);
    // Clients that went away before their request left the producer are not sent at all.
    const waiters = g.waiters.filter((w) => {
      if (w.signal?.aborted) w.reject(new AppError('timeout', 'the client went away'));
      return !w.signal?.aborted;
    });
    if (!waiters.length) return;
    const data: InferJob = {
      model: { name: g.model.name, version: g.model.version, sha256: g.model.sha256 },
      batching: g.batching,
      requests: waiters.map((w) => w.request),
    };
    this.jobsSent++;
    void this.send(data, waiters);
  }

  private async send(data: InferJob, waiters: Waiter[]) {
    try {
      const job = await this.queue.add('infer', data);
      const result = await awaitJob<InferResult>(job, this.events, this.timeoutMs, 'inference');
      waiters.forEach((w, i) => {
        const r = result.responses[i];
        if (r) w.resolve(r);
        else w.reject(new AppError('internal', 'the worker returned no answer for this request'));
      });
    } catch (e) {
      for (const w of waiters) w.reject(e as Error);
    }
  }
}

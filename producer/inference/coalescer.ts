// Producer-side coalescing: online requests for the same model version travel together as one
// `infer` job or stream entry (senders.ts, MODELQ_ONLINE_TRANSPORT), because BullMQ moves only a few thousand jobs per second and a job per request would
// cap the platform below onnxruntime. Requests gather for up to maxDelayMs (or until maxBatch rows),
// except when the model is idle here (no job in flight, no request in the previous maxDelayMs):
// then company is unlikely and they leave at the end of this turn of the event loop.
//
// Not shared with the engine's dynamic batcher (workers/engine/batcher.ts), on purpose: both wait
// for a window, but this one sends a job the moment its window closes, however many jobs are in
// flight (the worker's batcher does the bounding), and a request that would overflow maxBatch
// closes the group it would have joined. The batcher holds requests back while `instances` runs of
// the model are busy, so a full run slot, not only the clock, ends its window; it then takes
// requests up to maxBatch rows from a queue that may hold several batches, groups by input shape,
// and honours abort signals. A helper covering both would be a scheduler with hooks for each
// difference, longer than either.
import { AppError } from '../../core/errors.ts';
import type { Batching } from '../../core/jobs/infer.ts';
import type { WireRequest, WireResponse } from '../../core/jobs/online-wire.ts';
import type { VersionRecord } from '../../core/registry.ts';
import type { GroupSender } from './senders.ts';

interface Waiter {
  rows: number;
  /** True once the client went away; such requests are not sent. */
  gone?: () => boolean;
  resolve: (r: WireResponse) => void;
  reject: (e: Error) => void;
}

interface Group {
  key: string;
  model: VersionRecord;
  batching: Batching;
  waiters: Waiter[];
  /** The waiters' requests, apart: they are let go once the job is written, the waiters later. */
  requests: WireRequest[];
  rows: number;
  /** No request of the model came in the maxDelayMs before this group's first one. */
  quiet: boolean;
  timer?: NodeJS.Timeout;
  soon?: NodeJS.Immediate;
}

export class InferCoalescer {
  private readonly groups = new Map<string, Group>();
  /** Jobs in flight per model version. */
  private readonly inFlight = new Map<string, number>();
  private readonly lastArrival = new Map<string, number>();
  jobsSent = 0;

  constructor(
    private readonly sender: GroupSender,
    private readonly timeoutMs: number,
  ) {}

  /** Resolves with this request's answer; rejects with 504 after the timeout. */
  submit(model: VersionRecord, batching: Batching, request: WireRequest, gone?: () => boolean): Promise<WireResponse> {
    const key = `${model.name}@${model.version}`;
    const rows = batching.batchable ? (request.inputs[0]?.shape[0] ?? 1) : 1;
    return new Promise((resolve, reject) => {
      let g = this.groups.get(key);
      // A job never carries more than maxBatch rows unless one request alone is larger.
      if (g && g.rows + rows > batching.maxBatch) {
        this.flush(g);
        g = undefined;
      }
      const now = Date.now();
      const previous = this.lastArrival.get(key);
      this.lastArrival.set(key, now);
      if (!g) {
        g = { key, model, batching, waiters: [], requests: [], rows: 0, quiet: previous === undefined || now - previous >= batching.maxDelayMs };
        this.groups.set(key, g);
      }
      g.batching = batching; // the newest settings win
      request.deadline = now + this.timeoutMs;
      g.waiters.push({ rows, gone, resolve, reject });
      g.requests.push(request);
      g.rows += rows;
      this.schedule(g);
    });
  }

  private schedule(g: Group) {
    if (g.rows >= g.batching.maxBatch || g.batching.maxDelayMs === 0) return this.flush(g);
    if (g.quiet && !this.inFlight.get(g.key)) {
      g.soon ??= setImmediate(() => this.flush(g));
      return;
    }
    g.timer ??= setTimeout(() => this.flush(g), g.batching.maxDelayMs);
  }

  private flush(g: Group) {
    if (this.groups.get(g.key) === g) this.groups.delete(g.key);
    if (g.timer) clearTimeout(g.timer);
    if (g.soon) clearImmediate(g.soon);
    g.timer = g.soon = undefined;
    // Clients that went away before their request left the producer are not sent at all.
    const waiters: Waiter[] = [];
    const requests: WireRequest[] = [];
    g.waiters.forEach((w, i) => {
      if (w.gone?.()) return w.reject(new AppError('timeout', 'the client went away'));
      waiters.push(w);
      requests.push(g.requests[i]!);
    });
    g.waiters = [];
    g.requests = [];
    if (!waiters.length) return;
    const data = {
      model: {
        name: g.model.name,
        version: g.model.version,
        sha256: g.model.sha256,
        ...(g.model.processing && { processing: g.model.processing }),
        ...(g.model.pipeline && { pipeline: g.model.pipeline }),
      },
      batching: g.batching,
      requests,
    };
    this.jobsSent++;
    this.inFlight.set(g.key, (this.inFlight.get(g.key) ?? 0) + 1);
    void this.send(data, waiters).finally(() => {
      const left = (this.inFlight.get(g.key) ?? 1) - 1;
      if (left > 0) this.inFlight.set(g.key, left);
      else this.inFlight.delete(g.key);
    });
  }

  private async send(data: Parameters<GroupSender['send']>[0], waiters: Waiter[]) {
    try {
      const responses = await this.sender.send(data);
      waiters.forEach((w, i) => {
        const r = responses[i];
        if (r) w.resolve(r);
        else w.reject(new AppError('internal', 'the worker returned no answer for this request'));
      });
    } catch (e) {
      for (const w of waiters) w.reject(e as Error);
    }
  }
}

// Dynamic batching (what Triton's dynamic batcher does, inside the engine): concurrent requests
// for the same model version and the same shape beyond the batch dimension are concatenated into
// one onnxruntime run, sent when it reaches maxBatch rows or when the oldest request has waited
// maxDelayMs, and at most `instances` runs of a model are in flight at once. Results are split back.
// An idle model (no run in flight, no request in the previous maxDelayMs) does not wait: company
// is unlikely to come, and the wait would be pure latency at low load (1-client latency halved).
//
// Not shared with the producer's coalescer (producer/inference/coalescer.ts), which also gathers requests for
// a window: that one sends its job as soon as the window closes regardless of what is in flight,
// while this batcher's window also ends only when one of the model's `instances` run slots is free
// (requests pile up meanwhile and leave in batches of up to maxBatch rows, oldest first), per input
// shape, with abort signals. See the coalescer's opening comment.
import { AppError } from '../../core/errors.ts';
import { BATCH_BUCKETS } from '../../core/jobs/infer.ts';
import type { RawTensor, TypedArray } from '../../core/tensors.ts';
import type { ModelHandle } from './messages.ts';

export interface BatchSettings {
  maxBatch: number;
  maxDelayMs: number;
  instances: number;
  /**
   * Low priority (shadow mirrors): batched apart from the same model's other requests, and each run
   * waits in the engine until a thread is idle and no other request waits here (Engine.run).
   */
  low?: boolean;
}

/** What the batcher needs from the engine: one run on some thread. */
export type RunFn = (
  model: ModelHandle,
  feeds: Record<string, RawTensor>,
  opts: { rows: number; requests: number; outputs?: string[]; low?: boolean },
) => Promise<Record<string, RawTensor>>;

interface Pending {
  feeds: Record<string, RawTensor>;
  rows: number;
  enqueuedAt: number;
  signal?: AbortSignal;
  resolve: (out: Record<string, RawTensor>) => void;
  reject: (e: Error) => void;
}

interface Lane {
  key: string;
  /** Runs one request at a time (no dynamic batch dimension). */
  solo: boolean;
  /** Low-priority requests only (BatchSettings.low). */
  low: boolean;
  /** The run slots it counts against: its model's sha256, apart (`<sha256>|low`) for low-priority lanes. */
  slot: string;
  model: ModelHandle;
  settings: BatchSettings;
  pending: Pending[];
  rows: number;
  timer?: NodeJS.Timeout;
  /** No request of the model came in the maxDelayMs before this batch's first one. */
  quiet: boolean;
  /** An idle model's run, taken at the end of this turn of the event loop (a job's requests arrive together). */
  soon?: NodeJS.Immediate;
}

export interface BatcherStats {
  /** Runs by batch size bucket (upper bounds 1, 2, 4, ... 1024, +Inf). */
  batchSizes: Record<string, number>;
  perModel: Record<string, { runs: number; rows: number; requests: number; computeMs: number; waitMs: number }>;
}

export class Batcher {
  private readonly lanes = new Map<string, Lane>();
  // By model sha256 (`<sha256>|low` for low-priority runs, which never take a primary's run slot).
  private readonly running = new Map<string, number>();
  private readonly lastArrival = new Map<string, number>(); // by model sha256
  readonly stats: BatcherStats = { batchSizes: {}, perModel: {} };

  constructor(
    private readonly run: RunFn,
    private readonly label: (m: ModelHandle) => string = (m) => m.sha256.slice(0, 12),
  ) {}

  /**
   * Queues one request. `batchable`: every input and output has a dynamic first dimension, so
   * requests can be concatenated along it; otherwise the request runs alone.
   */
  submit(
    model: ModelHandle,
    feeds: Record<string, RawTensor>,
    settings: BatchSettings,
    batchable: boolean,
    signal?: AbortSignal,
  ): Promise<Record<string, RawTensor>> {
    const first = Object.values(feeds)[0];
    const rows = batchable && first ? (first.dims[0] ?? 1) : 1;
    const low = settings.low === true;
    const key = (batchable ? `${model.sha256}|${shapeKey(feeds)}` : `${model.sha256}|solo|${Math.random()}`) + (low ? '|low' : '');
    return new Promise((resolve, reject) => {
      const now = performance.now();
      const previous = this.lastArrival.get(model.sha256);
      this.lastArrival.set(model.sha256, now);
      let lane = this.lanes.get(key);
      if (!lane) {
        lane = { key, solo: !batchable, low, slot: low ? `${model.sha256}|low` : model.sha256, model, settings, pending: [], rows: 0, quiet: true };
        this.lanes.set(key, lane);
      }
      lane.settings = settings; // the newest settings win: changes apply to the next batch
      if (!lane.pending.length) lane.quiet = previous === undefined || now - previous >= settings.maxDelayMs;
      lane.pending.push({ feeds, rows, enqueuedAt: now, signal, resolve, reject });
      lane.rows += rows;
      this.schedule(lane);
    });
  }

  /** Whether a request that is not low priority waits for its run (the engine then holds low-priority runs back). */
  get primaryWaiting(): boolean {
    for (const l of this.lanes.values()) if (!l.low && l.pending.length) return true;
    return false;
  }

  private drop(lane: Lane) {
    if (this.lanes.get(lane.key) === lane) this.lanes.delete(lane.key);
  }

  private schedule(lane: Lane) {
    if (!lane.pending.length) return this.drop(lane);
    const running = this.running.get(lane.slot) ?? 0;
    if (running >= lane.settings.instances) return; // a finishing run calls schedule again; meanwhile the batch grows
    const waited = performance.now() - lane.pending[0]!.enqueuedAt;
    if (lane.solo || lane.rows >= lane.settings.maxBatch || waited >= lane.settings.maxDelayMs) {
      this.flush(lane);
    } else if (running === 0 && lane.quiet) {
      lane.soon ??= setImmediate(() => {
        lane.soon = undefined;
        if (lane.pending.length && (this.running.get(lane.slot) ?? 0) < lane.settings.instances) this.flush(lane);
      });
    } else if (!lane.timer) {
      lane.timer = setTimeout(
        () => {
          lane.timer = undefined;
          this.schedule(lane);
        },
        Math.max(0, lane.settings.maxDelayMs - waited),
      );
    }
  }

  private flush(lane: Lane) {
    if (lane.timer) clearTimeout(lane.timer);
    if (lane.soon) clearImmediate(lane.soon);
    lane.timer = undefined;
    lane.soon = undefined;
    // Take requests up to maxBatch rows (at least one, even if it alone is larger).
    const batch: Pending[] = [];
    let rows = 0;
    while (lane.pending.length) {
      const next = lane.pending[0]!;
      if (batch.length && rows + next.rows > lane.settings.maxBatch) break;
      lane.pending.shift();
      lane.rows -= next.rows;
      if (next.signal?.aborted) {
        next.reject(new AppError('timeout', 'the client stopped waiting before the request started'));
        continue;
      }
      batch.push(next);
      rows += next.rows;
    }
    if (!lane.pending.length) this.drop(lane);
    if (!batch.length) return this.schedule(lane);
    const slot = lane.slot;
    this.running.set(slot, (this.running.get(slot) ?? 0) + 1);
    void this.execute(lane.model, batch, rows, lane.low).finally(() => {
      this.running.set(slot, (this.running.get(slot) ?? 1) - 1);
      // An instance is free: serve whichever lane of this model waits (oldest request first).
      const waiting = [...this.lanes.values()]
        .filter((l) => l.slot === slot && l.pending.length)
        .sort((a, b) => a.pending[0]!.enqueuedAt - b.pending[0]!.enqueuedAt);
      for (const l of waiting) this.schedule(l);
    });
    // More waiting than one batch takes and an instance still free: go on.
    if (lane.pending.length) this.schedule(lane);
  }

  private async execute(model: ModelHandle, batch: Pending[], rows: number, low: boolean) {
    const start = performance.now();
    const s = (this.stats.perModel[this.label(model)] ??= { runs: 0, rows: 0, requests: 0, computeMs: 0, waitMs: 0 });
    for (const p of batch) s.waitMs += start - p.enqueuedAt;
    try {
      if (batch.length === 1) {
        const only = batch[0]!;
        only.resolve(await this.timed(model, only.feeds, rows, 1, low));
        return;
      }
      const out = await this.timed(model, concat(batch.map((p) => p.feeds)), rows, batch.length, low);
      let offset = 0;
      const parts = batch.map((p) => {
        const part = slice(out, offset, p.rows, rows);
        offset += p.rows;
        return part;
      });
      batch.forEach((p, i) => p.resolve(parts[i]!));
    } catch (e) {
      if (batch.length > 1 && e instanceof AppError && e.code === 'bad_request') {
        // One bad request must fail alone: run each on its own.
        await Promise.all(
          batch.map(async (p) => {
            try {
              p.resolve(await this.timed(model, p.feeds, p.rows, 1, low));
            } catch (err) {
              p.reject(err as Error);
            }
          }),
        );
        return;
      }
      for (const p of batch) p.reject(e as Error);
    }
  }

  private async timed(model: ModelHandle, feeds: Record<string, RawTensor>, rows: number, requests: number, low: boolean) {
    const t0 = performance.now();
    const out = await this.run(model, feeds, low ? { rows, requests, low } : { rows, requests });
    const s = this.stats.perModel[this.label(model)]!;
    s.runs++;
    s.rows += rows;
    s.requests += requests;
    s.computeMs += performance.now() - t0;
    const bucket = String(BATCH_BUCKETS.find((b) => rows <= b) ?? '+Inf');
    this.stats.batchSizes[bucket] = (this.stats.batchSizes[bucket] ?? 0) + 1;
    return out;
  }
}

function shapeKey(feeds: Record<string, RawTensor>): string {
  return Object.entries(feeds)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([n, t]) => `${n}:${t.type}:${t.dims.slice(1).join('x')}`)
    .join(',');
}

/** Concatenates each input along the first dimension. */
function concat(all: Record<string, RawTensor>[]): Record<string, RawTensor> {
  const out: Record<string, RawTensor> = {};
  for (const name of Object.keys(all[0]!)) {
    const parts = all.map((f) => f[name]!);
    const dims = [parts.reduce((n, t) => n + (t.dims[0] ?? 1), 0), ...parts[0]!.dims.slice(1)];
    if (Array.isArray(parts[0]!.data)) {
      out[name] = { type: parts[0]!.type, dims, data: parts.flatMap((t) => t.data as string[]) };
      continue;
    }
    const first = parts[0]!.data as TypedArray;
    const total = parts.reduce((n, t) => n + (t.data as TypedArray).length, 0);
    const data = new (first.constructor as new (n: number) => TypedArray)(total);
    let at = 0;
    for (const t of parts) {
      data.set(t.data as never, at);
      at += (t.data as TypedArray).length;
    }
    out[name] = { type: parts[0]!.type, dims, data };
  }
  return out;
}

/** Rows [offset, offset+rows) of every output whose first dimension is the batch. */
function slice(out: Record<string, RawTensor>, offset: number, rows: number, total: number): Record<string, RawTensor> {
  const res: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(out)) {
    if (t.dims[0] !== total) throw new AppError('internal', `output "${name}" has first dimension ${t.dims[0]}, not the batch of ${total}`);
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const data = Array.isArray(t.data) ? t.data.slice(offset * per, (offset + rows) * per) : (t.data as TypedArray).slice(offset * per, (offset + rows) * per);
    res[name] = { type: t.type, dims: [rows, ...t.dims.slice(1)], data };
  }
  return res;
}

// The engine: a pool of worker threads that own onnxruntime sessions. The main thread only moves
// messages, so BullMQ keeps renewing locks while models run: session.run() and session creation
// block the thread they are called on.
import { Worker } from 'node:worker_threads';
import { AppError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { Signature } from '../../core/jobs/inspect.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { Batcher, type BatchSettings } from './batcher.ts';
import type { FromThread, ModelHandle, ThreadInit, ToThread } from './messages.ts';
import type { RowGroupJob } from './score-parquet.ts';
import type { ScoredSegment, SegmentJob } from './score-segment.ts';

export type { BatchSettings, ModelHandle };

export interface EngineOptions {
  /** Session threads. Default 1. */
  threads?: number;
  /** 'cuda' asks for the CUDA execution provider, falling back to CPU with one warning. Default 'cpu'. */
  device?: 'cpu' | 'cuda';
  /** onnxruntime intra-op threads per session. Default 1. */
  intraOpThreads?: number;
  /** Per-thread bound on cached sessions, estimated by model file size. Default 2 GiB. */
  cacheBytes?: number;
  logger?: Logger;
}

interface Pending {
  resolve: (v: { value: unknown; computeMs: number; runs?: number }) => void;
  reject: (e: Error) => void;
}

class SessionThread {
  worker!: Worker;
  inFlight = 0;
  readonly loaded = new Set<string>();
  readonly pending = new Map<number, Pending>();
  device: 'cpu' | 'cuda' = 'cpu';
  private ready!: Promise<void>;

  constructor(
    readonly index: number,
    private readonly init: ThreadInit,
    private readonly onWarning: (m: string) => void,
    private readonly onExit: (t: SessionThread, code: number) => void,
  ) {
    this.spawn();
  }

  spawn() {
    this.loaded.clear();
    this.worker = new Worker(new URL('./thread.mjs', import.meta.url), { workerData: this.init, name: `modelq-engine-${this.index}` });
    this.ready = new Promise((resolve, reject) => {
      const onMsg = (m: FromThread) => {
        if (m.op === 'ready') {
          this.device = m.device;
          resolve();
        }
      };
      this.worker.on('message', onMsg);
      this.worker.once('error', reject);
    });
    this.worker.on('message', (m: FromThread) => this.onMessage(m));
    this.worker.on('error', (e) => this.failAll(new AppError('internal', `engine thread crashed: ${e.message}`, true)));
    this.worker.on('exit', (code) => {
      this.failAll(new AppError('internal', `engine thread exited with code ${code}`, true));
      this.onExit(this, code);
    });
  }

  whenReady() {
    return this.ready;
  }

  private onMessage(m: FromThread) {
    if (m.op === 'warning') return this.onWarning(m.message);
    if (m.op !== 'result') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.inFlight--;
    if (m.ok) p.resolve({ value: m.value, computeMs: m.computeMs, ...(m.runs !== undefined ? { runs: m.runs } : {}) });
    else p.reject(new AppError(m.kind === 'internal' ? 'internal' : m.kind, m.message, m.kind === 'internal'));
  }

  private failAll(e: Error) {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.inFlight = 0;
  }

  send(msg: ToThread, transfer: ArrayBuffer[]): Promise<{ value: unknown; computeMs: number; runs?: number }> {
    this.inFlight++;
    this.loaded.add(msg.model.sha256);
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }
}

export interface EngineStats {
  runs: number;
  rows: number;
  requests: number;
  computeMs: number;
  errors: number;
}

export class Engine {
  private threads: SessionThread[] = [];
  private nextId = 1;
  private closing = false;
  private warned = false;
  readonly stats: EngineStats = { runs: 0, rows: 0, requests: 0, computeMs: 0, errors: 0 };
  readonly opts: Required<Omit<EngineOptions, 'logger'>> & { logger?: Logger };
  readonly batcher: Batcher;

  constructor(opts: EngineOptions = {}) {
    this.opts = { threads: 1, device: 'cpu', intraOpThreads: 1, cacheBytes: 2 * 1024 ** 3, ...opts };
    this.batcher = new Batcher(
      (model, feeds, o) => this.run(model, feeds, o),
      (m) => m.label ?? m.sha256.slice(0, 12),
    );
  }

  async start(): Promise<void> {
    const init: ThreadInit = { device: this.opts.device, intraOpThreads: this.opts.intraOpThreads, cacheBytes: this.opts.cacheBytes };
    for (let i = 0; i < this.opts.threads; i++) {
      this.threads.push(
        new SessionThread(
          i,
          init,
          (m) => this.warnOnce(m),
          (t, code) => this.onThreadExit(t, code),
        ),
      );
    }
    await Promise.all(this.threads.map((t) => t.whenReady()));
  }

  /** The device sessions actually use (cuda requested but unavailable reads 'cpu' after the first load). */
  get device(): 'cpu' | 'cuda' {
    return this.threads.every((t) => t.device === 'cuda') ? 'cuda' : 'cpu';
  }

  private warnOnce(message: string) {
    if (this.warned) return;
    this.warned = true;
    this.opts.logger?.warn({ device: this.opts.device }, message);
    for (const t of this.threads) t.device = 'cpu';
  }

  private onThreadExit(t: SessionThread, code: number) {
    if (this.closing) return;
    this.opts.logger?.error({ thread: t.index, code }, 'engine thread exited; restarting it');
    t.spawn();
  }

  /** Least busy thread; among equals, one that already holds the model's session. */
  private pick(sha256: string): SessionThread {
    let best: SessionThread | undefined;
    for (const t of this.threads) {
      if (!best || t.inFlight < best.inFlight || (t.inFlight === best.inFlight && t.loaded.has(sha256) && !best.loaded.has(sha256))) best = t;
    }
    return best!;
  }

  /** Loads the model and reads its signature; a file that does not load rejects with `invalid_model`. */
  async inspect(model: ModelHandle): Promise<Signature> {
    const r = await this.pick(model.sha256).send({ op: 'inspect', id: this.nextId++, model }, []);
    return r.value as Signature;
  }

  /**
   * One request through the dynamic batcher: merged with concurrent requests for the same model
   * when `batchable` (every input and output has a dynamic first dimension).
   */
  infer(
    model: ModelHandle,
    feeds: Record<string, RawTensor>,
    settings: BatchSettings,
    batchable: boolean,
    signal?: AbortSignal,
  ): Promise<Record<string, RawTensor>> {
    if (this.closing) return Promise.reject(new AppError('unavailable', 'engine is shutting down', true));
    return this.batcher.submit(model, feeds, settings, batchable, signal);
  }

  /** One onnxruntime run on the least busy thread. `rows` and `requests` only feed the counters. */
  async run(
    model: ModelHandle,
    feeds: Record<string, RawTensor>,
    opts: { outputs?: string[]; rows?: number; requests?: number } = {},
  ): Promise<Record<string, RawTensor>> {
    if (this.closing) throw new AppError('unavailable', 'engine is shutting down', true);
    const transfer: ArrayBuffer[] = [];
    for (const t of Object.values(feeds)) {
      if (!Array.isArray(t.data) && t.data.buffer instanceof ArrayBuffer && t.data.byteLength === t.data.buffer.byteLength) transfer.push(t.data.buffer);
    }
    try {
      const r = await this.pick(model.sha256).send({ op: 'run', id: this.nextId++, model, feeds, outputs: opts.outputs }, transfer);
      this.stats.runs++;
      this.stats.rows += opts.rows ?? 1;
      this.stats.requests += opts.requests ?? 1;
      this.stats.computeMs += r.computeMs;
      return r.value as Record<string, RawTensor>;
    } catch (e) {
      this.stats.errors++;
      throw e;
    }
  }

  /**
   * Parses, scores and formats one segment of a batch chunk on the least busy thread (the bytes
   * move there, nothing is copied). Rejects only when the whole segment cannot be scored.
   */
  score(model: ModelHandle, job: SegmentJob): Promise<ScoredSegment> {
    return this.scoreOn({ op: 'score', id: this.nextId++, model, job }, job.bytes);
  }

  /** The same for one Parquet row group: its bytes (and the file's footer) move to the thread. */
  scoreRowGroup(model: ModelHandle, job: RowGroupJob): Promise<ScoredSegment> {
    return this.scoreOn({ op: 'score-row-group', id: this.nextId++, model, job }, job.bytes);
  }

  private async scoreOn(msg: ToThread & { model: ModelHandle }, bytes: Uint8Array): Promise<ScoredSegment> {
    if (this.closing) throw new AppError('unavailable', 'engine is shutting down', true);
    const transfer = bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? [bytes.buffer] : [];
    try {
      const r = await this.pick(msg.model.sha256).send(msg, transfer);
      const v = r.value as ScoredSegment;
      this.stats.runs += r.runs ?? 0;
      this.stats.rows += v.completed;
      this.stats.requests += v.rows;
      this.stats.computeMs += r.computeMs;
      return v;
    } catch (e) {
      this.stats.errors++;
      throw e;
    }
  }

  /** Session threads: how many segments can be scored at once. */
  get threadCount(): number {
    return this.opts.threads;
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
    this.threads = [];
  }
}

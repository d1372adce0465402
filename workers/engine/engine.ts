// The engine: a pool of worker threads that own onnxruntime sessions. The main thread only moves
// messages, so BullMQ keeps renewing locks while models run: session.run() and session creation
// block the thread they are called on.
import { AppError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { Signature } from '../../core/jobs/inspect.ts';
import type { RawTensor, TypedArray } from '../../core/tensors.ts';
import { Batcher, type BatchSettings } from './batcher.ts';
import type { Budget } from './budget.ts';
import type { ModelHandle, ThreadInit, ToThread } from './messages.ts';
import { ThreadSlot } from './thread-slot.ts';
import type { RowGroupJob } from './score-parquet.ts';
import type { ScoredSegment, SegmentJob } from './score-segment.ts';
import { movedBuffers } from '../rows/segmenter.ts';

export type { BatchSettings, Budget, ModelHandle };

export interface EngineOptions {
  /** Session threads. Default 1. */
  threads?: number;
  /** 'cuda' asks for the CUDA execution provider, falling back to CPU with one warning. Default 'cpu'. */
  device?: 'cpu' | 'cuda';
  /** onnxruntime intra-op threads per session. Default 1. */
  intraOpThreads?: number;
  /** Batch rows by the fast paths (MODELQ_FAST_ROWS). Default true. */
  fastRows?: boolean;
  /** Per-thread bound on cached sessions, estimated by model file size. Default 2 GiB. */
  cacheBytes?: number;
  /** V8 heap bound of each thread in MiB (`resourceLimits.maxOldGenerationSizeMb`); past it the thread is replaced. Default 1024. */
  memoryMb?: number;
  /** Time budget of a task that names none (an online run, a model load or check). Default 120 s. */
  runTimeoutMs?: number;
  logger?: Logger;
}

export interface EngineStats {
  runs: number;
  rows: number;
  requests: number;
  computeMs: number;
  errors: number;
  /** Sessions created (a model loaded on one thread), and the time they took. */
  loads: number;
  loadMs: number;
}

/** A model the engine holds or is loading, as the worker reports it. */
export interface EngineModel {
  sha256: string;
  label?: string;
  /** `loaded`: every session thread holds it; `loading`: a warm-up is under way; `partial`: some threads hold it. */
  state: 'loaded' | 'loading' | 'partial';
  threads: number;
}

export class Engine {
  private threads: ThreadSlot[] = [];
  private watchdog?: NodeJS.Timeout;
  /** Threads replaced because a task overran its budget, ran out of memory or crashed. */
  replaced = 0;
  private nextId = 1;
  private closing = false;
  private warned = false;
  readonly stats: EngineStats = { runs: 0, rows: 0, requests: 0, computeMs: 0, errors: 0, loads: 0, loadMs: 0 };
  /** Warm-ups under way, by sha256: one per model, however many callers ask. */
  private readonly warming = new Map<string, Promise<void>>();
  /** name@version of the models seen, for the figures (dropped when no thread holds the model). */
  private readonly labels = new Map<string, string>();
  readonly opts: Required<Omit<EngineOptions, 'logger'>> & { logger?: Logger };
  readonly batcher: Batcher;
  /** Low-priority runs (shadow mirrors) waiting for their turn, oldest first (see `lowTurn`). */
  private readonly lowWaiting: (() => void)[] = [];
  private lowRunning = 0;
  private lowTimer?: NodeJS.Timeout;
  /**
   * Low-priority runs started; the times one was held back because no thread was idle or a primary
   * request waited in the batcher; and the primary runs sent to a thread while a low-priority run
   * was on it (each waited for at most that one small run): what mirrors cost primaries, counted.
   */
  readonly lowStats = { runs: 0, held: 0, primaryRuns: 0, primaryBehindLow: 0 };
  /** The thread the low-priority run in flight is on. */
  private lowThread?: ThreadSlot;

  constructor(opts: EngineOptions = {}) {
    this.opts = { threads: 1, device: 'cpu', intraOpThreads: 1, fastRows: true, cacheBytes: 2 * 1024 ** 3, memoryMb: 1024, runTimeoutMs: 120_000, ...opts };
    this.batcher = new Batcher(
      (model, feeds, o) => this.run(model, feeds, o),
      (m) => m.label ?? m.sha256.slice(0, 12),
    );
  }

  async start(): Promise<void> {
    const init: ThreadInit = {
      device: this.opts.device,
      intraOpThreads: this.opts.intraOpThreads,
      cacheBytes: this.opts.cacheBytes,
      fastRows: this.opts.fastRows,
    };
    const hooks = {
      onWarning: (m: string) => this.warnOnce(m),
      onLoad: (_sha: string, ms: number) => {
        this.stats.loads++;
        this.stats.loadMs += ms;
      },
      onReplaced: (index: number, why: string) => {
        this.replaced++;
        this.opts.logger?.error({ thread: index, why }, 'engine thread replaced');
      },
    };
    for (let i = 0; i < this.opts.threads; i++) this.threads.push(new ThreadSlot(i, init, { memoryMb: this.opts.memoryMb }, hooks));
    await Promise.all(this.threads.map((t) => t.whenReady()));
    // The watchdog: a quarter of the shortest default budget between looks, at most a second.
    this.watchdog = setInterval(() => this.checkBudgets(), Math.min(1000, Math.max(10, this.opts.runTimeoutMs / 4)));
    this.watchdog.unref();
  }

  private checkBudgets() {
    const now = performance.now();
    for (const t of this.threads) if (t.busy) t.checkBudgets(now);
  }

  /** A task's budget: the caller's, or the default one for tasks that name none. */
  private budget(b?: Partial<Budget>): Budget {
    return { timeoutMs: this.opts.runTimeoutMs, limit: 'MODELQ_ENGINE_RUN_TIMEOUT_MS', ...b };
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

  /** Least busy thread; among equals, one that already holds the model's session. */
  private pick(sha256: string): ThreadSlot {
    let best: ThreadSlot | undefined;
    for (const t of this.threads) {
      if (!best || t.inFlight < best.inFlight || (t.inFlight === best.inFlight && t.loaded.has(sha256) && !best.loaded.has(sha256))) best = t;
    }
    return best!;
  }

  /** Whether every session thread holds the model's session: a request for it pays no load. */
  isWarm(sha256: string): boolean {
    return this.threads.length > 0 && this.threads.every((t) => t.loaded.has(sha256));
  }

  /** Whether a warm-up of the model is under way. */
  isLoading(sha256: string): boolean {
    return this.warming.has(sha256);
  }

  /**
   * Loads the model on every session thread that does not hold it yet (in parallel, one load per
   * thread) and resolves when all have it. Concurrent calls share one warm-up. A file that does not
   * load rejects with `invalid_model`.
   */
  warm(model: ModelHandle): Promise<void> {
    if (this.closing) return Promise.reject(new AppError('unavailable', 'engine is shutting down', true));
    if (model.label) this.labels.set(model.sha256, model.label);
    if (this.isWarm(model.sha256)) return Promise.resolve();
    let p = this.warming.get(model.sha256);
    if (!p) {
      const cold = this.threads.filter((t) => !t.loaded.has(model.sha256));
      p = Promise.all(cold.map((t) => t.send({ op: 'load', id: this.nextId++, model }, [], this.budget())))
        .then(() => {})
        .finally(() => this.warming.delete(model.sha256));
      this.warming.set(model.sha256, p);
    }
    return p;
  }

  /**
   * Drops the model's session on every thread and forgets its label and batching figures (its
   * version was erased). A request already running on it finishes first.
   */
  async unload(sha256: string, labels: string[] = []): Promise<void> {
    await this.warming.get(sha256)?.catch(() => {});
    const label = this.labels.get(sha256);
    await Promise.all(this.threads.map((t) => t.send({ op: 'unload', id: this.nextId++, model: { sha256, path: '' } }, [], this.budget())));
    this.labels.delete(sha256);
    this.forgetFigures([label ?? sha256.slice(0, 12), ...labels]);
  }

  /** Drops the batching figures counted under these labels (`name@version`). */
  forgetFigures(labels: string[]): void {
    for (const l of labels) delete this.batcher.stats.perModel[l];
  }

  /** The models the threads hold or are loading, for the worker's figures. */
  models(): EngineModel[] {
    const shas = new Set<string>(this.warming.keys());
    for (const t of this.threads) for (const s of t.loaded) shas.add(s);
    for (const s of this.labels.keys()) if (!shas.has(s)) this.labels.delete(s);
    return [...shas].map((sha256) => {
      const threads = this.threads.filter((t) => t.loaded.has(sha256)).length;
      const state = this.warming.has(sha256) ? 'loading' : threads === this.threads.length ? 'loaded' : 'partial';
      const label = this.labels.get(sha256);
      return { sha256, ...(label ? { label } : {}), state, threads };
    });
  }

  /** Loads the model and reads its signature; a file that does not load rejects with `invalid_model`. */
  async inspect(model: ModelHandle): Promise<Signature> {
    const r = await this.pick(model.sha256).send({ op: 'inspect', id: this.nextId++, model }, [], this.budget());
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

  /**
   * Resolves when a low-priority run may start: one at a time, only on an idle thread, and only
   * while no other request waits in the batcher. Primary runs never wait for it: they go to a thread
   * at once, so at most one low-priority run (a small shadow batch) is ever ahead of them.
   */
  private lowTurn(): Promise<void> {
    return new Promise((resolve) => {
      this.lowWaiting.push(resolve);
      this.pumpLow();
    });
  }

  private pumpLow() {
    if (!this.lowWaiting.length) return;
    if (this.lowRunning === 0 && !this.batcher.primaryWaiting && this.threads.some((t) => t.inFlight === 0)) {
      this.lowRunning++;
      this.lowStats.runs++;
      this.lowWaiting.shift()!();
      return;
    }
    this.lowStats.held++;
    // Runs ending call this again; the timer covers primaries that left the batcher without a run (aborted).
    this.lowTimer ??= setTimeout(() => {
      this.lowTimer = undefined;
      this.pumpLow();
    }, 20);
    this.lowTimer.unref();
  }

  /**
   * One onnxruntime run on the least busy thread. `rows` and `requests` only feed the counters; `low`
   * (a shadow mirror's run) waits for its turn first (`lowTurn`).
   */
  async run(
    model: ModelHandle,
    feeds: Record<string, RawTensor>,
    opts: { outputs?: string[]; rows?: number; requests?: number; budget?: Partial<Budget>; low?: boolean } = {},
  ): Promise<Record<string, RawTensor>> {
    if (this.closing) throw new AppError('unavailable', 'engine is shutting down', true);
    if (!opts.low) return this.runNow(model, feeds, opts, false).finally(() => this.pumpLow());
    await this.lowTurn();
    try {
      if (this.closing) throw new AppError('unavailable', 'engine is shutting down', true);
      return await this.runNow(model, feeds, opts, true);
    } finally {
      this.lowRunning--;
      this.lowThread = undefined;
      this.pumpLow();
    }
  }

  private async runNow(
    model: ModelHandle,
    feeds: Record<string, RawTensor>,
    opts: { outputs?: string[]; rows?: number; requests?: number; budget?: Partial<Budget> },
    low: boolean,
  ): Promise<Record<string, RawTensor>> {
    if (model.label && !this.labels.has(model.sha256)) this.labels.set(model.sha256, model.label);
    // Typed arrays cross to the thread transferred: one that is a view into a larger buffer (a
    // request's bytes in its stream frame) is copied to its own first, as posting the view would
    // copy the whole buffer behind it.
    const transfer: ArrayBuffer[] = [];
    let own: Record<string, RawTensor> | undefined;
    for (const [name, t] of Object.entries(feeds)) {
      if (Array.isArray(t.data) || !(t.data.buffer instanceof ArrayBuffer)) continue;
      let data = t.data as TypedArray;
      if (data.byteLength !== data.buffer.byteLength) {
        data = data.slice();
        (own ??= { ...feeds })[name] = { ...t, data };
      }
      if (!transfer.includes(data.buffer as ArrayBuffer)) transfer.push(data.buffer as ArrayBuffer);
    }
    if (own) feeds = own;
    try {
      const thread = this.pick(model.sha256);
      if (low) this.lowThread = thread;
      else {
        this.lowStats.primaryRuns++;
        if (thread === this.lowThread) this.lowStats.primaryBehindLow++;
      }
      const r = await thread.send({ op: 'run', id: this.nextId++, model, feeds, outputs: opts.outputs }, transfer, this.budget(opts.budget));
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
   * move there, nothing is copied). Rejects only when the whole segment cannot be scored, or when
   * it overruns `budget` (EngineFault; its thread is replaced).
   */
  score(model: ModelHandle, job: SegmentJob, budget?: Partial<Budget>): Promise<ScoredSegment> {
    return this.scoreOn({ op: 'score', id: this.nextId++, model, job }, job.bytes, budget);
  }

  /** The same for one Parquet row group: its bytes (and the file's footer) move to the thread. */
  scoreRowGroup(model: ModelHandle, job: RowGroupJob, budget?: Partial<Budget>): Promise<ScoredSegment> {
    return this.scoreOn({ op: 'score-row-group', id: this.nextId++, model, job }, job.bytes, budget);
  }

  private async scoreOn(msg: ToThread & { model: ModelHandle }, bytes: Uint8Array, budget?: Partial<Budget>): Promise<ScoredSegment> {
    if (this.closing) throw new AppError('unavailable', 'engine is shutting down', true);
    // A segment given away whole (segmenter.ts movedBuffers) moves even when it is a view of its buffer.
    const transfer =
      (bytes.byteLength === bytes.buffer.byteLength || movedBuffers.has(bytes.buffer)) && bytes.buffer instanceof ArrayBuffer ? [bytes.buffer] : [];
    try {
      const r = await this.pick(msg.model.sha256).send(msg, transfer, this.budget(budget));
      const v = r.value as ScoredSegment;
      this.stats.runs += r.runs ?? 0;
      this.stats.rows += v.completed;
      this.stats.requests += v.rows;
      this.stats.computeMs += r.computeMs;
      return v;
    } catch (e) {
      this.stats.errors++;
      throw e;
    } finally {
      this.pumpLow();
    }
  }

  /** Session threads: how many segments can be scored at once. */
  get threadCount(): number {
    return this.opts.threads;
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.watchdog);
    clearTimeout(this.lowTimer);
    // Low-priority runs still waiting start now, and fail as the engine is closing.
    for (const go of this.lowWaiting.splice(0)) {
      this.lowRunning++;
      go();
    }
    await Promise.all(this.threads.map((t) => t.close()));
    this.threads = [];
  }
}

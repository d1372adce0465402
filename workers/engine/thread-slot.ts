// One engine thread as the main thread sees it: the Worker that runs session-thread.ts, the tasks
// sent to it, and its replacement. A task that overruns its time budget, exhausts the thread's
// heap (resourceLimits) or crashes it cannot be stopped from outside while the thread keeps
// going, so the slot terminates that Worker and starts a fresh one: the culprit fails with an
// EngineFault naming the limit, the other tasks it held fail retryably, and work continues.
import { Worker } from 'node:worker_threads';
import { AppError } from '../../core/errors.ts';
import { bystanderError, crashFault, memoryFault, timeFault, type Budget } from './budget.ts';
import type { FromThread, ThreadInit, ToThread } from './messages.ts';

export type TaskResult = { value: unknown; computeMs: number; runs?: number };

interface Task {
  sha256: string;
  what: string;
  budget: Budget;
  /** When the thread reported that it began the task (main thread's clock); unset while queued there. */
  startedAt?: number;
  resolve: (v: TaskResult) => void;
  reject: (e: Error) => void;
  unlisten?: () => void;
}

export interface SlotHooks {
  onWarning(message: string): void;
  onLoad(sha256: string, loadMs: number): void;
  /** A Worker was given up (budget, memory, crash); `why` says which. */
  onReplaced(index: number, why: string): void;
}

export interface SlotOptions {
  /** V8 old-generation heap bound of the thread, in MiB (MODELQ_ENGINE_THREAD_MEMORY_MB). */
  memoryMb: number;
}

/** What a task is, for error messages: "scoring a segment of a batch chunk (m@1)". */
function describe(msg: ToThread): string {
  const what = {
    run: 'the model run',
    score: 'scoring a segment of a batch chunk',
    'score-row-group': 'scoring a row group of a batch chunk',
    load: 'loading the model',
    unload: 'dropping the model',
    inspect: 'checking the model',
  }[msg.op];
  return msg.model.label ? `${what} (${msg.model.label})` : what;
}

export class ThreadSlot {
  worker!: Worker;
  inFlight = 0;
  /** Models whose session this thread holds (reported by the thread: created, not yet evicted). */
  readonly loaded = new Set<string>();
  private readonly tasks = new Map<number, Task>();
  device: 'cpu' | 'cuda' = 'cpu';
  private ready!: Promise<void>;
  private closed = false;

  constructor(
    readonly index: number,
    private readonly init: ThreadInit,
    private readonly opts: SlotOptions,
    private readonly hooks: SlotHooks,
  ) {
    this.spawn();
  }

  private spawn() {
    this.loaded.clear();
    const w = new Worker(new URL('./thread.mjs', import.meta.url), {
      workerData: this.init,
      name: `modelq-engine-${this.index}`,
      resourceLimits: { maxOldGenerationSizeMb: this.opts.memoryMb },
    });
    this.worker = w;
    this.ready = new Promise((resolve, reject) => {
      w.on('message', (m: FromThread) => {
        if (m.op === 'ready') {
          this.device = m.device;
          resolve();
        }
      });
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`engine thread exited with code ${code} before it was ready`)));
    });
    this.ready.catch(() => {}); // a start that fails is reported through whenReady, or replaced below
    w.on('message', (m: FromThread) => {
      if (w === this.worker) this.onMessage(m);
    });
    w.on('error', (e: Error & { code?: string }) => {
      if (w !== this.worker) return;
      const oom = e.code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.replace(oom ? 'it ran out of memory' : `it crashed: ${e.message}`, (t) =>
        oom ? memoryFault(this.opts.memoryMb, t.what) : crashFault(t.what, e.message),
      );
    });
    w.on('exit', (code) => {
      if (w !== this.worker || this.closed) return;
      this.replace(`it exited with code ${code}`, (t) => crashFault(t.what, `exit code ${code}`));
    });
  }

  whenReady() {
    return this.ready;
  }

  private onMessage(m: FromThread) {
    if (m.op === 'warning') return this.hooks.onWarning(m.message);
    if (m.op === 'evicted') return void this.loaded.delete(m.sha256);
    if (m.op === 'start') {
      const t = this.tasks.get(m.id);
      if (t) t.startedAt = performance.now();
      return;
    }
    if (m.op !== 'result') return;
    const t = this.take(m.id);
    if (!t) return;
    if (m.ok) {
      this.loaded.add(t.sha256);
      if (m.loadMs > 0) this.hooks.onLoad(t.sha256, m.loadMs);
      t.resolve({ value: m.value, computeMs: m.computeMs, ...(m.runs !== undefined ? { runs: m.runs } : {}) });
    } else t.reject(new AppError(m.kind === 'internal' ? 'internal' : m.kind, m.message, m.kind === 'internal'));
  }

  private take(id: number): Task | undefined {
    const t = this.tasks.get(id);
    if (!t) return undefined;
    this.tasks.delete(id);
    this.inFlight--;
    t.unlisten?.();
    return t;
  }

  send(msg: ToThread, transfer: ArrayBuffer[], budget: Budget): Promise<TaskResult> {
    if (budget.signal?.aborted) return Promise.reject(budget.signal.reason as Error);
    this.inFlight++;
    return new Promise((resolve, reject) => {
      const task: Task = { sha256: msg.model.sha256, what: describe(msg), budget, resolve, reject };
      const signal = budget.signal;
      if (signal) {
        const onAbort = () => this.abort(msg.id, signal.reason as Error);
        signal.addEventListener('abort', onAbort, { once: true });
        task.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
      this.tasks.set(msg.id, task);
      this.worker.postMessage(msg, transfer);
    });
  }

  /** A task its caller gave up on: a queued one is dropped (its result will be ignored), a started one takes its thread with it. */
  private abort(id: number, reason: Error) {
    const t = this.tasks.get(id);
    if (!t) return;
    if (t.startedAt === undefined) {
      this.take(id);
      t.reject(reason);
      return;
    }
    this.replace(`a task was cancelled: ${reason.message}`, (x) => (x === t ? reason : undefined));
  }

  /** Replaces the thread when its oldest started task is past its budget; returns whether it did. */
  checkBudgets(now: number): boolean {
    let oldest: Task | undefined;
    for (const t of this.tasks.values()) {
      if (t.startedAt !== undefined && now - t.startedAt > t.budget.timeoutMs && (!oldest || t.startedAt < oldest.startedAt!)) oldest = t;
    }
    if (!oldest) return false;
    const culprit = oldest;
    this.replace(`${culprit.what} overran ${culprit.budget.limit}`, (t) => (t === culprit ? timeFault(t.budget, t.what) : undefined));
    return true;
  }

  /**
   * Gives the Worker up and starts a fresh one. `blame` names the error of each started task it
   * considers responsible (undefined: a bystander); every other task fails retryably.
   */
  private replace(why: string, blame: (t: Task) => Error | undefined) {
    const old = this.worker;
    const tasks = [...this.tasks.entries()];
    this.tasks.clear();
    this.inFlight = 0;
    for (const [, t] of tasks) {
      t.unlisten?.();
      t.reject((t.startedAt !== undefined ? blame(t) : undefined) ?? bystanderError(why));
    }
    old.removeAllListeners();
    old.on('error', () => {}); // its last words no longer matter
    // A thread stuck in native code (a model's run) ends only when that returns: never wait for it.
    void old.terminate().catch(() => {});
    old.unref();
    if (this.closed) return;
    this.hooks.onReplaced(this.index, why);
    this.spawn();
  }

  /** Started tasks, for the watchdog's interval. */
  get busy(): boolean {
    return this.tasks.size > 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    for (const t of this.tasks.values()) t.reject(new AppError('unavailable', 'engine is shutting down', true));
    this.tasks.clear();
    w.unref();
    // A thread stuck in native code never finishes terminating; closing does not wait on it forever.
    await Promise.race([w.terminate(), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}

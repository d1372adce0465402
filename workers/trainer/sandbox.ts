// Runs one training attempt (or one distillation) in a child process and relays its progress. The
// worker's main thread only waits on messages; killing the child (cancel, abort, shutdown) loses at
// most the current epoch of a training job, because the child checkpoints after every one.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AppError, type ErrorCode } from '../../core/errors.ts';
import type { TrainJob, TrainProgress } from '../../core/jobs/train.ts';
import type { StoreConfig } from '../../core/storage/index.ts';
import type { DistillOutcome, DistillProgress, DistillTask } from './run-distill.ts';
import type { RunOutcome } from './run-training.ts';

/** `cfg` picks the artifact store in the child (its data dir made absolute by the caller). */
export type ToTrainer =
  | { kind: 'train'; jobId: string; job: TrainJob; cfg: StoreConfig }
  | { kind: 'distill'; task: DistillTask; cfg: StoreConfig };
export type FromTrainer =
  | { type: 'ready' }
  | { type: 'progress'; progress: TrainProgress | DistillProgress }
  | { type: 'done'; outcome: RunOutcome | DistillOutcome }
  | { type: 'error'; code: ErrorCode; message: string };

type Outcome<M extends ToTrainer> = M extends { kind: 'train' } ? RunOutcome : DistillOutcome;
type Progress<M extends ToTrainer> = M extends { kind: 'train' } ? TrainProgress : DistillProgress;

export interface SandboxOptions<P = TrainProgress> {
  onProgress?(p: P): Promise<void> | void;
  /** Aborting kills the child; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

export function trainInSandbox(msg: Omit<Extract<ToTrainer, { kind: 'train' }>, 'kind'>, opts: SandboxOptions = {}): Promise<RunOutcome> {
  return runInSandbox({ kind: 'train', ...msg }, opts);
}

export function runInSandbox<M extends ToTrainer>(msg: M, opts: SandboxOptions<Progress<M>> = {}): Promise<Outcome<M>> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason);
    const child = fork(CHILD, [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    // Keep the end of stderr for the error message (a WASM abort prints its whole module otherwise).
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => { stderr = (stderr + b.toString('utf8')).slice(-4000); });
    let outcome: Outcome<M> | undefined;
    let failure: Error | undefined;
    // Progress updates are applied in order; the result waits for the last of them.
    let chain: Promise<void> = Promise.resolve();
    const onAbort = () => {
      failure = opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error('training aborted');
      child.kill('SIGKILL');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: FromTrainer) => {
      if (m.type === 'ready') child.send(msg);
      else if (m.type === 'progress') chain = chain.then(() => opts.onProgress?.(m.progress as Progress<M>)).catch(() => {});
      else if (m.type === 'done') outcome = m.outcome as Outcome<M>;
      else failure = new AppError(m.code, m.message, m.code === 'internal');
    });
    child.on('error', (e) => { failure ??= e; });
    // 'close' comes after the exit and after the IPC channel and stderr are drained, so no message is missed.
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      void chain.then(() => {
        if (outcome && code === 0) return resolve(outcome);
        const tail = stderr.trim().split('\n').slice(-5).join('\n').slice(-1500);
        reject(failure ?? new AppError('internal', `trainer exited with ${sig ?? `code ${code}`}${tail ? `: ${tail}` : ''}`, true));
      });
    });
  });
}

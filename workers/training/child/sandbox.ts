// Runs one training attempt (or one distillation) in a child process and relays its progress. The
// worker's main thread only waits on messages; killing the child (cancel, abort, shutdown) loses at
// most the current epoch of a training job, because the child checkpoints after every one. The
// child runs user-shaped work, so it gets no secrets (only the environment it needs) and is killed
// past MODELQ_TRAIN_MAX_MEMORY_MB of memory or MODELQ_TRAIN_TIMEOUT_S of time.
import { fork } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../../core/config.ts';
import { AppError, type ErrorCode } from '../../../core/errors.ts';
import type { TrainJob, TrainProgress } from '../../../core/jobs/train.ts';
import type { StoreConfig } from '../../../core/storage/index.ts';
import type { DistillOutcome, DistillProgress, DistillTask } from './run-distill.ts';
import type { RunOutcome } from './run-training.ts';

/**
 * `cfg` picks the artifact store in the child (its data dir made absolute by the caller) and the
 * limits; only the store's keys reach the child.
 */
export type SandboxConfig = StoreConfig & Partial<Pick<Config, 'MODELQ_TRAIN_MAX_MEMORY_MB' | 'MODELQ_TRAIN_TIMEOUT_S'>>;
export type ToTrainer = { kind: 'train'; jobId: string; job: TrainJob; cfg: SandboxConfig } | { kind: 'distill'; task: DistillTask; cfg: SandboxConfig };
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
  /** Called with the child's pid once it runs (for tests and watchers). */
  onStart?(pid: number): void;
}

/** What the child's environment keeps: the system's basics, and cloud credentials when the store needs them. */
const ENV_KEEP = /^(PATH|HOME|TMPDIR|TMP|TEMP|LANG|LC_[A-Z]+|TZ|NODE_ENV)$/;
const ENV_S3 = /^AWS_[A-Z0-9_]+$/;

/** The child's environment: never API keys, the Redis URL or its password, or anything else of the worker's. */
export function sandboxEnv(env: NodeJS.ProcessEnv, cfg: StoreConfig): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v !== undefined && (ENV_KEEP.test(k) || (cfg.MODELQ_STORE === 's3' && ENV_S3.test(k)))) out[k] = v;
  }
  return out;
}

/** Only the store's settings travel to the child, whatever the caller spread into `cfg`. */
function storeOnly(cfg: SandboxConfig): StoreConfig {
  const { MODELQ_DATA_DIR, MODELQ_STORE, MODELQ_S3_BUCKET, MODELQ_S3_ENDPOINT, MODELQ_S3_REGION } = cfg;
  // Encryption at rest: the child reads and writes the store, so it gets the master keys too.
  const { MODELQ_S3_SSE, MODELQ_S3_SSE_KMS_KEY_ID, MODELQ_MASTER_KEY, MODELQ_MASTER_KEY_FILE } = cfg;
  return {
    MODELQ_DATA_DIR,
    MODELQ_STORE,
    MODELQ_S3_BUCKET,
    MODELQ_S3_ENDPOINT,
    MODELQ_S3_REGION,
    MODELQ_S3_SSE,
    MODELQ_S3_SSE_KMS_KEY_ID,
    MODELQ_MASTER_KEY,
    MODELQ_MASTER_KEY_FILE,
  };
}

/** Resident memory of a process in bytes (Linux /proc), or null where it cannot be read. */
function rssBytes(pid: number): number | null {
  try {
    const pages = Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    return Number.isFinite(pages) ? pages * 4096 : null;
  } catch {
    return null;
  }
}

const MEMORY_POLL_MS = 200;
const memoryError = (mb: number) =>
  new AppError(
    'bad_request',
    `training used more than MODELQ_TRAIN_MAX_MEMORY_MB=${mb} MiB of memory and was stopped: train a smaller model or on fewer rows, or raise the limit`,
  );

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

export function trainInSandbox(msg: Omit<Extract<ToTrainer, { kind: 'train' }>, 'kind'>, opts: SandboxOptions = {}): Promise<RunOutcome> {
  return runInSandbox({ kind: 'train', ...msg }, opts);
}

export function runInSandbox<M extends ToTrainer>(msg: M, opts: SandboxOptions<Progress<M>> = {}): Promise<Outcome<M>> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(opts.signal.reason);
    const memoryMb = msg.cfg.MODELQ_TRAIN_MAX_MEMORY_MB;
    const timeoutS = msg.cfg.MODELQ_TRAIN_TIMEOUT_S;
    const child = fork(CHILD, [], {
      // The V8 heap gets the limit too, so a runaway heap dies there with a clear reason; WASM memory is watched below.
      execArgv: memoryMb ? [`--max-old-space-size=${memoryMb}`] : [],
      env: sandboxEnv(process.env, msg.cfg),
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    msg = { ...msg, cfg: storeOnly(msg.cfg) };
    if (child.pid !== undefined) opts.onStart?.(child.pid);
    // Keep the end of stderr for the error message (a WASM abort prints its whole module otherwise).
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString('utf8')).slice(-4000);
    });
    let outcome: Outcome<M> | undefined;
    let failure: Error | undefined;
    // Progress updates are applied in order; the result waits for the last of them.
    let chain: Promise<void> = Promise.resolve();
    const onAbort = () => {
      failure = opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error('training aborted');
      child.kill('SIGKILL');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const stop = (e: Error) => {
      failure = e;
      child.kill('SIGKILL');
    };
    const watch = memoryMb
      ? setInterval(() => {
          const rss = child.pid !== undefined ? rssBytes(child.pid) : null;
          if (rss !== null && rss > memoryMb * 1024 * 1024) stop(memoryError(memoryMb));
        }, MEMORY_POLL_MS)
      : undefined;
    const timer = timeoutS
      ? setTimeout(
          () =>
            stop(
              new AppError(
                'timeout',
                `training ran longer than MODELQ_TRAIN_TIMEOUT_S=${timeoutS} s and was stopped: train fewer epochs or on fewer rows, or raise the limit`,
              ),
            ),
          timeoutS * 1000,
        )
      : undefined;
    child.on('message', (m: FromTrainer) => {
      if (m.type === 'ready') child.send(msg);
      else if (m.type === 'progress') chain = chain.then(() => opts.onProgress?.(m.progress as Progress<M>)).catch(() => {});
      else if (m.type === 'done') outcome = m.outcome as Outcome<M>;
      else failure = new AppError(m.code, m.message, m.code === 'internal');
    });
    child.on('error', (e) => {
      failure ??= e;
    });
    // 'close' comes after the exit and after the IPC channel and stderr are drained, so no message is missed.
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      clearInterval(watch);
      clearTimeout(timer);
      void chain.then(() => {
        if (outcome && code === 0) return resolve(outcome);
        if (!failure && memoryMb && /heap limit|heap out of memory/i.test(stderr)) failure = memoryError(memoryMb);
        const tail = stderr.trim().split('\n').slice(-5).join('\n').slice(-1500);
        reject(failure ?? new AppError('internal', `trainer exited with ${sig ?? `code ${code}`}${tail ? `: ${tail}` : ''}`, true));
      });
    });
  });
}

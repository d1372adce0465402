// Dataset profiling off the serving event loop: reading and parsing every row of an upload takes
// seconds for a large file, which on the producer's main thread would stall online inference. So
// each profile runs in a worker thread of its own (profiler-thread.ts) and only the result
// comes back.
import { Worker } from 'node:worker_threads';
import type { DatasetFormat, Profile } from '../../core/datasets.ts';
import { AppError, type ErrorCode } from '../../core/errors.ts';
import type { StoreConfig } from '../../core/storage/index.ts';

export interface ProfileTask {
  store: StoreConfig;
  key: string;
  format: DatasetFormat;
  maxRowBytes: number;
}
export type ProfileAnswer = { ok: true; profile: Profile } | { ok: false; code: ErrorCode; message: string };

/** Profiles the stored file `task.key` in a worker thread; errors come back as the AppError the thread raised. */
export function profileInThread(task: ProfileTask): Promise<Profile> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./profiler-thread.mjs', import.meta.url), { workerData: task, name: 'modelq-dataset-profiler' });
    let answered = false;
    w.once('message', (a: ProfileAnswer) => {
      answered = true;
      if (a.ok) resolve(a.profile);
      else reject(new AppError(a.code, a.message));
    });
    w.once('error', (e) => {
      answered = true;
      reject(e);
    });
    w.once('exit', (code) => {
      if (!answered) reject(new AppError('internal', `dataset profiling stopped with code ${code}`));
    });
  });
}

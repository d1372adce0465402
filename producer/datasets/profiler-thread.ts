// The body of a dataset-profiling thread (see profiler.ts): reads the stored file, profiles
// it, posts the profile or the error, and ends.
import { parentPort, workerData } from 'node:worker_threads';
import { profileDataset } from '../../core/datasets.ts';
import { AppError } from '../../core/errors.ts';
import { createStore } from '../../core/storage/index.ts';
import type { ProfileAnswer, ProfileTask } from './profiler.ts';

const task = workerData as ProfileTask;
let answer: ProfileAnswer;
try {
  const store = createStore(task.store);
  answer = { ok: true, profile: await profileDataset(await store.read(task.key), task.format, { maxRowBytes: task.maxRowBytes }) };
} catch (e) {
  answer = e instanceof AppError ? { ok: false, code: e.code, message: e.message } : { ok: false, code: 'internal', message: 'the dataset could not be read' };
}
parentPort!.postMessage(answer);

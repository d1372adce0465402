// Processor of the `model` queue (its jobs are named `inspect`): load an uploaded ONNX file in the
// engine and return its signature. Named by its queue, as every processor is (workers/worker.ts).
import type { Job } from 'bullmq';
import { inspectJobSchema, type Signature } from '../../core/jobs/inspect.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { Engine } from '../engine/engine.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { AppError } from '../../core/errors.ts';
import { localArtifactPath } from '../model-cache.ts';

export interface InspectDeps {
  engine: Engine;
  store: ArtifactStore;
  cacheDir?: string;
}

export async function modelProcessor(job: Pick<Job, 'data'>, deps: InspectDeps): Promise<Signature> {
  const data = parseJobData(inspectJobSchema, job.data, 'inspect');
  try {
    if (!(await deps.store.stat(data.key))) throw new AppError('not_found', `uploaded file ${data.key} is gone`);
    const path = await localArtifactPath(deps.store, data.key, data.sha256, deps.cacheDir);
    return await deps.engine.inspect({ sha256: data.sha256, path });
  } catch (e) {
    throw toJobError(e);
  }
}

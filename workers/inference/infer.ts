// Processor for `infer` jobs: each request of the job runs through the engine and gets its own
// answer, so one bad request fails alone.
import type { Job } from 'bullmq';
import { AppError } from '../../core/errors.ts';
import { inferJobSchema, type InferRequest, type InferResponse, type InferResult } from '../../core/jobs/infer.ts';
import { modelArtifactKey } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { fromRaw, toRaw, type RawTensor } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { parseJobData, toJobError } from '../processor.ts';

export interface InferDeps { engine: Engine; store: ArtifactStore }

export async function inferProcessor(job: Pick<Job, 'data'>, deps: InferDeps): Promise<InferResult> {
  const data = parseJobData(inferJobSchema, job.data, 'infer');
  const path = deps.store.localPath(modelArtifactKey(data.model.sha256));
  if (!path) throw toJobError(new AppError('internal', 'the artifact store has no local files'));
  const model: ModelHandle = { sha256: data.model.sha256, path };
  const expired = data.deadline !== undefined && Date.now() > data.deadline;
  const responses = await Promise.all(data.requests.map((r) => (expired
    ? Promise.resolve<InferResponse>({ ok: false, error: { code: 'timeout', message: 'the client stopped waiting before the request started' } })
    : runOne(deps.engine, model, r))));
  // A model that cannot load fails every request: fail the job so the producer reports it as such.
  const allInvalid = responses.every((r) => !r.ok && r.error.code === 'invalid_model');
  if (allInvalid && !responses[0]!.ok) throw toJobError(new AppError('invalid_model', responses[0]!.error.message));
  return { responses };
}

async function runOne(engine: Engine, model: ModelHandle, req: InferRequest): Promise<InferResponse> {
  try {
    const feeds: Record<string, RawTensor> = {};
    for (const t of req.inputs) feeds[t.name] = toRaw(t);
    const rows = req.inputs[0]?.shape[0] ?? 1;
    const out = await engine.run(model, feeds, { outputs: req.outputs, rows });
    return { ok: true, outputs: Object.entries(out).map(([name, t]) => fromRaw(name, t)) };
  } catch (e) {
    if (e instanceof AppError && !e.retryable) return { ok: false, error: { code: e.code, message: e.message } };
    throw toJobError(e);
  }
}

// Processor for `infer` jobs: every request of the job goes to the engine's dynamic batcher (which
// merges it with concurrent requests from this and other jobs) and gets its own answer, so one bad
// request fails alone.
import type { Job } from 'bullmq';
import { AppError, errorData } from '../../core/errors.ts';
import {
  bytesOfRaw,
  inferJobSchema,
  isBytes,
  isPacked,
  packRaw,
  rawOfBytes,
  unpackRaw,
  type Batching,
  type InferJob,
  type InferResult,
  type LoadProgress,
  type WireTensor,
} from '../../core/jobs/infer.ts';
import type { WireRequest, WireResponse } from '../../core/jobs/online-wire.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { fromRaw, toRaw, type RawTensor } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { fileFeeds, withPost, type StepContext } from '../processing/feeds.ts';
import { PipelineRunner, type PipelineValue } from '../processing/pipeline.ts';
import type { Config } from '../../core/config.ts';
import { requestDrift, type AfterRun } from '../processing/drift.ts';
import type { BatchDrift } from './batch-drift.ts';

export interface InferDeps {
  engine: Engine;
  store: ArtifactStore;
  cacheDir?: string;
  /** Told of every model this worker serves, so a restarted worker can load recently used ones first. */
  warmer?: { used(model: { name: string; version: number }): void };
  cfg?: Partial<Pick<Config, 'MODELQ_MAX_IMAGE_PIXELS' | 'MODELQ_PIPELINE_MAX_CROPS'>>;
  /** Drift of the requests the producer drew, for models with declared processing (workers/processing/drift.ts). */
  drift?: BatchDrift;
}

/** What a request to a model with declared processing needs on the worker besides its files. */
export type FilesContext = { processing: NonNullable<InferJob['model']['processing']>; drift?: (feeds: Record<string, RawTensor>) => AfterRun } & StepContext;

/** The files context of a job's model, when it declares processing. */
export function filesOf(m: InferJob['model'], deps: Pick<InferDeps, 'cfg' | 'store' | 'drift'>): FilesContext | undefined {
  if (!m.processing) return undefined;
  const drift = deps.drift;
  return {
    processing: m.processing,
    maxPixels: deps.cfg?.MODELQ_MAX_IMAGE_PIXELS,
    store: deps.store,
    ...(drift ? { drift: (feeds: Record<string, RawTensor>) => requestDrift(m, drift, feeds) } : {}),
  };
}

export type InferJobLike = Pick<Job, 'data'> & Partial<Pick<Job, 'updateProgress' | 'opts'>>;

/** Rows per low-priority engine run of shadow mirrors: one never holds a thread long ahead of a primary. */
export const SHADOW_MAX_BATCH = 8;

/** A shadow mirror's batching: low priority in the engine (Engine.run), in small batches. */
export const shadowBatching = (b: Batching): Batching & { low: true } => ({ ...b, low: true, maxBatch: Math.min(b.maxBatch, SHADOW_MAX_BATCH) });

const SOLO: Batching = { maxBatch: 1, maxDelayMs: 0, instances: 1, batchable: false };

export async function inferProcessor(job: InferJobLike, deps: InferDeps, signal?: AbortSignal): Promise<InferResult> {
  const data = parseJobData(inferJobSchema, job.data, 'infer');
  if (data.model.pipeline) return inferPipeline(job, data, deps, signal);
  const path = await localModelPath(deps.store, data.model.sha256, deps.cacheDir).catch((e: unknown) => {
    throw toJobError(e);
  });
  const model: ModelHandle = { sha256: data.model.sha256, path, label: `${data.model.name}@${data.model.version}` };
  deps.warmer?.used(data.model);
  if (!deps.engine.isWarm(model.sha256)) await loadFirst(job, deps.engine, model, data.requests);
  // A BullMQ priority marks a shadow mirror (producer/inference/senders.ts).
  const batching = job.opts?.priority ? shadowBatching(data.batching ?? SOLO) : (data.batching ?? SOLO);
  const form = data.packed === true ? 'packed' : 'json';
  const files = filesOf(data.model, deps);
  // A job's requests and answers are JSON job data: never byte tensors here.
  const responses = (await Promise.all(data.requests.map((r) => runOne(deps.engine, model, batching, r, form, signal, files)))) as InferResult['responses'];
  // A model that cannot load fails every request: fail the job so it is reported as such.
  const first = responses[0]!;
  if (!first.ok && first.error.code === 'invalid_model' && responses.every((r) => !r.ok && r.error.code === 'invalid_model')) {
    throw toJobError(new AppError('invalid_model', first.error.message));
  }
  return { responses };
}

/** An infer job for a pipeline: its steps' models loaded together first when one is not yet, then each request through every step. */
async function inferPipeline(job: InferJobLike, data: InferJob, deps: InferDeps, signal?: AbortSignal): Promise<InferResult> {
  const runner = await openPipeline(data.model, deps);
  deps.warmer?.used(data.model);
  if (!runner.isWarm()) await loadFirst(job, { warm: () => runner.warm() }, pipelineHandle(data.model), data.requests);
  const form = data.packed === true ? 'packed' : 'json';
  const responses = (await Promise.all(
    data.requests.map((r) => runOne(deps.engine, pipelineHandle(data.model), SOLO, r, form, signal, undefined, runner)),
  )) as InferResult['responses'];
  return { responses };
}

/** The runner of a job's pipeline (its step models' files made local). */
export function openPipeline(m: InferJob['model'], deps: Pick<InferDeps, 'engine' | 'store' | 'cacheDir' | 'cfg'>): Promise<PipelineRunner> {
  return PipelineRunner.open(m.pipeline!, {
    engine: deps.engine,
    store: deps.store,
    cacheDir: deps.cacheDir,
    maxPixels: deps.cfg?.MODELQ_MAX_IMAGE_PIXELS,
    maxCrops: deps.cfg?.MODELQ_PIPELINE_MAX_CROPS,
  }).catch((e: unknown) => {
    throw toJobError(e);
  });
}

/** What a pipeline's loads are reported as: the pipeline's own label. */
export const pipelineHandle = (m: { name: string; version: number; sha256: string }): ModelHandle => ({
  sha256: m.sha256,
  path: '',
  label: `${m.name}@${m.version}`,
});

/**
 * The model is not loaded on every engine thread (a worker that started after it was registered and
 * never served it, or one that evicted it): load it before the requests run, telling the producer
 * through the job's progress so that the load does not count against the requests' timeout. Their
 * deadlines move by the load's duration for the same reason.
 */
export async function loadFirst(job: InferJobLike, engine: Pick<Engine, 'warm'>, model: ModelHandle, requests: { deadline?: number }[]) {
  const since = Date.now();
  const report = (p: LoadProgress) => void job.updateProgress?.(p).catch(() => {});
  report({ model: model.label!, loading: since });
  try {
    await engine.warm(model);
  } catch (e) {
    throw toJobError(e);
  }
  const ms = Date.now() - since;
  for (const r of requests) if (r.deadline !== undefined) r.deadline += ms;
  report({ model: model.label!, loaded: ms });
}

function feed(t: WireTensor): RawTensor {
  if (!isPacked(t) && !isBytes(t)) return toRaw(t);
  const raw = isBytes(t) ? rawOfBytes(t) : unpackRaw(t);
  if (!raw) throw new AppError('bad_request', `input "${t.name}": the packed bytes do not match shape [${t.shape.join(',')}] of ${t.datatype}`);
  return raw;
}

/** The form of numeric outputs: JSON values (older producers), base64 in job data, or raw bytes (stream frames). */
export type OutputForm = 'json' | 'packed' | 'bytes';

/** One request through the engine's dynamic batcher; a non-retryable failure is its answer, a retryable one throws. */
export async function runOne(
  engine: Engine,
  model: ModelHandle,
  batching: Batching,
  req: WireRequest,
  form: OutputForm,
  signal?: AbortSignal,
  files?: FilesContext,
  pipeline?: PipelineRunner,
): Promise<WireResponse> {
  if (req.deadline !== undefined && Date.now() > req.deadline) {
    return { ok: false, error: errorData(new AppError('timeout', 'the client stopped waiting before the request started')) };
  }
  try {
    let out: Record<string, RawTensor>;
    if (pipeline) {
      // Files (BYTES of base64) as their bytes, tensors as they are.
      // Texts (inputs that feed a step's text processing) as they are.
      const given: Record<string, PipelineValue> = {};
      const texts = pipeline.textInputs;
      for (const t of req.inputs)
        given[t.name] =
          t.datatype === 'BYTES' && !isPacked(t) && !isBytes(t)
            ? texts.has(t.name)
              ? t.data.map(String)
              : t.data.map((v) => Buffer.from(String(v), 'base64'))
            : feed(t);
      out = await pipeline.run(given, signal);
    } else {
      let feeds: Record<string, RawTensor> = {};
      if (files) feeds = await fileFeeds(files.processing, req.inputs, files);
      else for (const t of req.inputs) feeds[t.name] = feed(t);
      // Summarised before the run: the engine takes the feeds' buffers over.
      const after = req.drift && files?.drift ? files.drift(feeds) : undefined;
      out = withPost(files?.processing, await engine.infer(model, feeds, batching, batching.batchable, signal));
      after?.(out);
    }
    const wanted = req.outputs ? new Set(req.outputs) : null;
    const outputs: WireTensor[] = [];
    for (const [name, t] of Object.entries(out)) {
      if (wanted && !wanted.has(name)) continue;
      outputs.push((form === 'packed' && packRaw(name, t)) || (form === 'bytes' && bytesOfRaw(name, t)) || fromRaw(name, t));
    }
    return { ok: true, outputs };
  } catch (e) {
    if (e instanceof AppError && !e.retryable) return { ok: false, error: errorData(e) };
    throw toJobError(e);
  }
}

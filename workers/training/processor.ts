// Processor for `train` jobs: re-check the job against its dataset, train in a child process (progress
// after every epoch, cancel and abort kill the child), then check the export against the trainer's own
// predictions in the engine and register it as a new version with lineage and metrics.
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Config, keyPrefix } from '../../core/config.ts';
import { DatasetStore } from '../../core/datasets.ts';
import { AppError } from '../../core/errors.ts';
import { jobCancelKey, resolveTrain, trainJobSchema, type TrainMetrics, type TrainResult } from '../../core/jobs/train.ts';
import type { Logger } from '../../core/logger.ts';
import { modelArtifactKey, Registry, type VersionRecord } from '../../core/registry.ts';
import { platformSigner } from '../../core/signing.ts';
import { backgroundKey } from '../../core/jobs/explain.ts';
import { referenceKey } from '../../core/drift/index.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { RawTensor } from '../../core/tensors.ts';
import type { Engine } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { parseJobData, toJobError } from '../processor.ts';
import type { Predictions, RunOutcome } from './child/run-training.ts';
import { trainInSandbox } from './child/sandbox.ts';

export interface TrainDeps {
  engine: Pick<Engine, 'inspect' | 'run'>;
  store: ArtifactStore;
  redis: Redis;
  cfg: Config;
  logger: Logger;
  /** Where models from a non-local store are cached for the engine (workers/model-cache.ts). */
  cacheDir?: string;
}

/** The export must reproduce the trainer's outputs this closely (float32 sums in another order). */
export const EXPORT_TOLERANCE = 1e-4;
const CANCEL_POLL_MS = 500;

class Cancelled extends Error {}

export async function trainProcessor(job: Pick<Job, 'id' | 'data' | 'updateProgress'>, deps: TrainDeps, signal?: AbortSignal): Promise<TrainResult> {
  const data = parseJobData(trainJobSchema, job.data, 'train');
  const jobId = job.id!;
  const prefix = keyPrefix(deps.cfg);
  const cancelKey = jobCancelKey(prefix, jobId);
  const log = deps.logger.child({ queue: 'train', jobId });
  const ac = new AbortController();
  const onAbort = () => ac.abort(new Error('training aborted by the worker (shutdown or cancelJob); it resumes from its checkpoint'));
  signal?.addEventListener('abort', onAbort, { once: true });
  const poll = setInterval(() => {
    deps.redis.exists(cancelKey).then(
      (n) => {
        if (n) ac.abort(new Cancelled('job cancelled'));
      },
      () => {},
    );
  }, CANCEL_POLL_MS);
  try {
    if (await deps.redis.exists(cancelKey)) throw new Cancelled('job cancelled before it started');
    // Jobs outlive code and datasets: check again what the edge checked.
    const ds = await new DatasetStore(deps.redis, prefix).get(data.dataset.id);
    if (!ds) throw new AppError('bad_request', `dataset "${data.dataset.id}" no longer exists`);
    const { features, task, target, featureTypes } = data.hyperparameters;
    const columnTypes = featureTypes ? Object.fromEntries(Object.entries(featureTypes).flatMap(([c, k]) => (k === 'numeric' ? [] : [[c, k]]))) : undefined;
    const { featureTypes: _f, text: _t, columns: _c, imputation, ...plain } = data.hyperparameters;
    resolveTrain(
      {
        ...plain,
        dataset: ds.id,
        registerAs: data.registerAs,
        features,
        task,
        target,
        ...(columnTypes ? { columnTypes } : {}),
        ...(imputation ? { imputation: imputation.strategy, fillValue: imputation.fillValue } : {}),
      },
      ds,
    );

    const outcome = await trainInSandbox(
      { jobId, job: data, cfg: { ...deps.cfg, MODELQ_DATA_DIR: path.resolve(deps.cfg.MODELQ_DATA_DIR) } },
      { signal: ac.signal, onProgress: (p) => job.updateProgress(p as unknown as object) },
    );
    log.info({ epochs: outcome.epochsRun, bestEpoch: outcome.bestEpoch, resumedFrom: outcome.resumedFromEpoch }, 'training finished');
    if (ac.signal.aborted) throw ac.signal.reason;
    return await register(jobId, data, outcome, deps);
  } catch (e) {
    if (e instanceof Cancelled) throw toJobError(new AppError('conflict', e.message));
    throw toJobError(e);
  } finally {
    clearInterval(poll);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Same path as an upload: the bytes go to the store under their sha256, the engine must load them. */
async function register(jobId: string, data: ReturnType<typeof trainJobSchema.parse>, o: RunOutcome, deps: TrainDeps): Promise<TrainResult> {
  const bytes = await deps.store.get(o.modelKey);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const key = modelArtifactKey(sha256);
  if (!(await deps.store.stat(key))) await deps.store.put(key, bytes);
  const file = await localModelPath(deps.store, sha256, deps.cacheDir);
  const handle = { sha256, path: file, label: `${data.registerAs}@train` };
  const sig = await deps.engine.inspect(handle);

  const ref = JSON.parse((await deps.store.get(o.predictionsKey)).toString('utf8')) as Predictions;
  const feeds = referenceFeeds(ref);
  const out = await deps.engine.run(handle, feeds);
  const wrong = labelMismatch(out, ref, o.classes);
  if (wrong) throw new AppError('internal', `the ONNX export's label differs from the trainer's on validation row ${wrong.row}: ${wrong.got} vs ${wrong.want}`);
  const diff = maxDiff(out, ref);
  if (!(diff < EXPORT_TOLERANCE)) throw new AppError('internal', `the ONNX export differs from the trainer by ${diff} (limit ${EXPORT_TOLERANCE})`);

  const hp = data.hyperparameters;
  const explain = await explainArtifacts(o, deps.store);
  const heldout = ref.heldout ? await storeHeldout(ref.heldout, deps.store) : undefined;
  const signer = platformSigner(deps.cfg.MODELQ_SIGNING_KEY_FILE, (m) => deps.logger.warn(m));
  const { record } = await new Registry(deps.redis, keyPrefix(deps.cfg), { signer }).createVersion(
    data.registerAs,
    {
      sha256,
      bytes: bytes.length,
      inputs: sig.inputs,
      outputs: sig.outputs,
      lineage: { source: 'train', job: jobId, dataset: data.dataset.id, hyperparameters: hp, tenant: data.tenant ?? 'default', keyId: data.keyId ?? null },
      metrics: o.metrics as TrainMetrics & Record<string, unknown>,
      metadata: {
        task: hp.task,
        target: hp.target,
        features: hp.features,
        ...(hp.featureTypes ? { featureTypes: hp.featureTypes } : {}),
        ...(o.classes ? { classes: o.classes } : {}),
        // The column contract (core/model-columns.ts), as in the ONNX metadata's `modelq.columns`.
        columns: o.columns,
      },
      explain,
      ...(heldout ? { heldout } : {}),
    },
    { tenant: data.tenant ?? 'default', platform: data.platform ?? false },
  );
  return {
    model: { name: record.name, version: record.version },
    metrics: o.metrics,
    sha256,
    bestEpoch: o.bestEpoch,
    epochsRun: o.epochsRun,
    stoppedEarly: o.stoppedEarly,
    resumedFromEpoch: o.resumedFromEpoch,
    predictionsKey: o.predictionsKey,
    columns: o.columns,
    modelType: o.modelType,
    ...(o.candidates ? { candidates: o.candidates } : {}),
  };
}

/** The validation rows' targets and predictions under a content-addressed key that outlives the job's files. */
async function storeHeldout(h: { truth: number[]; predicted: number[]; confidence?: number[] }, store: ArtifactStore): Promise<{ key: string; rows: number }> {
  const text = JSON.stringify(h);
  const key = `heldout/sha256/${createHash('sha256').update(text).digest('hex')}.json`;
  await store.put(key, text);
  return { key, rows: h.truth.length };
}

/** The run's background and reference profile, moved under content-addressed keys that outlive the job's files. */
async function explainArtifacts(o: RunOutcome, store: ArtifactStore): Promise<NonNullable<VersionRecord['explain']>> {
  const out: NonNullable<VersionRecord['explain']> = {};
  const copy = async (ref: { key: string; rows: number; features: number }, keyOf: (sha: string) => string) => {
    const bytes = await store.get(ref.key);
    const key = keyOf(createHash('sha256').update(bytes).digest('hex'));
    await store.put(key, bytes);
    return { ...ref, key };
  };
  if (o.background) out.background = await copy(o.background, backgroundKey);
  if (o.reference) out.reference = await copy(o.reference, referenceKey);
  return out;
}

/** The reference rows as the model's inputs: [rows, 1] per column, a missing number as NaN. */
export function referenceFeeds(ref: Predictions): Record<string, RawTensor> {
  const feeds: Record<string, RawTensor> = {};
  for (const [name, values] of Object.entries(ref.numbers ?? {}))
    feeds[name] = { type: 'float32', dims: [ref.rows, 1], data: Float32Array.from(values, (v) => v ?? NaN) };
  for (const [name, values] of Object.entries(ref.strings ?? {})) feeds[name] = { type: 'string', dims: [ref.rows, 1], data: values };
  return feeds;
}

/** The first reference row whose label (the class itself) differs between the export and the trainer. */
function labelMismatch(out: Record<string, RawTensor>, ref: Predictions, classes?: (string | number)[]): { row: number; got: string; want: string } | null {
  if (!ref.labels) return null;
  const got = out.label ? Array.from(out.label.data as unknown as ArrayLike<string | number | bigint>, String) : [];
  const want = ref.labels.map((i) => String(classes ? classes[i] : i));
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return { row: i, got: JSON.stringify(got[i] ?? null), want: JSON.stringify(want[i]) };
  return null;
}

/** Largest difference between the engine's probabilities (or predictions) and the trainer's. */
function maxDiff(out: Record<string, RawTensor>, ref: Predictions): number {
  const num = (t: RawTensor | undefined) => (t ? Array.from(t.data as unknown as ArrayLike<number | bigint>, Number) : []);
  let d = 0;
  const cmp = (a: number[], b: number[] | undefined) => {
    if (!b || a.length !== b.length) return void (d = Infinity);
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  };
  if (ref.probabilities) {
    cmp(num(out.probabilities), ref.probabilities);
  } else {
    cmp(num(out.prediction), ref.prediction);
  }
  return d;
}

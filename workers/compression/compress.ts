// Processor for `compress` jobs: rewrite the parent's ONNX graph (rewrite.ts) or distill a student
// from it (distill.ts), check that the result loads, measure both on this worker's engine (on
// sample inputs made from the model's graph, and on every row of the job's dataset when it names
// one), and register the result as a new version whose lineage points at the parent. A model that
// cannot be compressed fails the job with the reason, naming the node.
import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { keyPrefix, type Config } from '../../core/config.ts';
import { AppError } from '../../core/errors.ts';
import {
  compressJobSchema,
  methodOptions,
  type CompressJob,
  type CompressReport,
  type DatasetReport,
  type OutputFigures,
  type Verdict,
} from '../../core/jobs/compress.ts';
import { GraphEditError, parameterCount } from '../onnx/graph.ts';
import { rewriteRefusal } from '../onnx/versions.ts';
import { modelArtifactKey, type Registry, type VersionRecord } from '../../core/registry.ts';
import { checkProcessing } from '../../core/processing/spec.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { RawTensor, Tensor, TensorSpec } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { JobDeadline } from '../job-deadline.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { takeRows } from '../training/child/data.ts';
import { compareOutputs, loadEvalRows, runRows, score, type EvalRows } from './dataset.ts';
import { distill, type DistillOptions } from './distill.ts';
import { loadSamples, type SampleRows } from './samples.ts';
import { BATCH, compareOn, measureSet, rowsPerSecond, runnableSamples, samplesFor } from './measure.ts';
import { cpuFeatures } from './cpu.ts';
import { judge, toleranceFor } from './verdict.ts';
import { accuracyOf, fp16, prune, quantizeDynamic, quantizeStaticBest, type RewriteCtx, type Rewritten } from './rewrite.ts';

export interface CompressDeps {
  engine: Engine;
  store: ArtifactStore;
  registry: Registry;
  redis: Redis;
  cfg: Config;
  cacheDir?: string;
}

type Progress = Pick<Job, 'id' | 'data' | 'updateProgress'>;

interface Parent {
  record: VersionRecord;
  bytes: Uint8Array;
  handle: ModelHandle;
  rows?: EvalRows;
  outBefore?: Record<string, RawTensor>;
  /** The request's uploaded rows, as the parent's inputs. */
  samples?: SampleRows;
  /** What the candidates are measured on, in words, for the report. */
  source: string;
}

async function loadParent(job: Progress, data: CompressJob, deps: CompressDeps): Promise<Parent> {
  const record = await deps.registry.getVersion(data.model.name, data.model.version);
  const bytes = await deps.store.get(modelArtifactKey(record.sha256));
  refuseUnknown(data, bytes);
  const handle: ModelHandle = { sha256: record.sha256, path: await localModelPath(deps.store, record.sha256, deps.cacheDir) };
  if (data.samples) {
    const samples = await loadSamples(deps.store, data.samples, record.inputs, deps.cfg.MODELQ_COMPRESS_SAMPLES_MAX_ROWS ?? 100_000);
    await job.updateProgress({ step: 'samples', rows: samples.rows });
    const name = data.samples.filename ? ` ${JSON.stringify(data.samples.filename)}` : '';
    return { record, bytes, handle, samples, source: `the request's samples${name} (${data.samples.format}, ${samples.rows} rows)` };
  }
  if (!data.dataset) return { record, bytes, handle, source: 'generated inputs (no dataset, no samples, no training dataset in the lineage)' };
  const lineage = data.dataset.fromLineage ? " (the model's training dataset, from its lineage)" : '';
  let rows: EvalRows;
  try {
    rows = await loadEvalRows({ ...deps, prefix: keyPrefix(deps.cfg) }, data, record);
  } catch (e) {
    // A training dataset nobody named that no longer feeds the model: generated inputs, said so.
    if (!data.dataset.fromLineage || !(e instanceof AppError) || e.code !== 'bad_request' || data.method === 'distill') throw e;
    return { record, bytes, handle, source: `generated inputs (the training dataset ${data.dataset.id} cannot feed the model: ${e.message})` };
  }
  // The dataset's rows through the parent first (for distill, these are the teacher's outputs).
  const outBefore = await runRows(deps.engine, handle, rows);
  await job.updateProgress({ step: 'dataset', rows: rows.rows });
  return { record, bytes, handle, rows, outBefore, source: `dataset ${rows.id}${lineage} (${rows.rows} rows)` };
}

/** The graph rewrites decode and re-encode the parent: a model newer than they know is refused before any work. */
function refuseUnknown(data: CompressJob, bytes: Uint8Array) {
  if (data.method === 'distill') return; // builds a new model; the parent only runs in onnxruntime
  const refusal = rewriteRefusal(bytes);
  if (refusal) throw new AppError('invalid_model', `${data.method} refused: ${refusal} (distill builds a new model instead)`);
}

function methodOptionsOf(data: CompressJob): Record<string, unknown> {
  const parsed = methodOptions[data.method].safeParse(data.options);
  if (!parsed.success) throw new AppError('bad_request', `options for ${data.method}: ${parsed.error.issues[0]!.message}`);
  return parsed.data as Record<string, unknown>;
}

async function distillStudent(job: Progress, p: Parent, options: Record<string, unknown>, deps: CompressDeps) {
  if (!p.rows || !p.outBefore) throw new AppError('bad_request', 'distill needs a dataset; the teacher labels its rows');
  const o = options as unknown as DistillOptions;
  const d = await distill(String(job.id), p.record, p.handle, o, p.rows, p.outBefore, { ...deps, teacherBytes: p.bytes }, (x) =>
    job.updateProgress(x as unknown as object),
  );
  const details = {
    teacherParams: parameterCount(p.bytes),
    studentParams: parameterCount(d.bytes),
    hidden: o.hidden,
    temperature: o.temperature,
    epochsRun: d.epochsRun,
    bestEpoch: d.bestEpoch,
    trainRows: p.rows.rows - d.heldOut.length,
    augmentedRows: d.augmentedRows,
    heldOutRows: d.heldOut.length,
    ...(d.textFeatures ? { textFeatures: d.textFeatures } : {}),
  };
  return { rewritten: { bytes: d.bytes, details }, distilled: d };
}

/** The method's rewrite; graph errors become job failures that name the node and the reason. */
async function rewrite(job: Progress, data: CompressJob, p: Parent, options: Record<string, unknown>, ctx: RewriteCtx, deps: CompressDeps) {
  try {
    switch (data.method) {
      case 'quantize-int8':
        return { rewritten: await quantizeDynamic(ctx, { perChannel: options.perChannel === true }) };
      case 'quantize-int8-static':
        return {
          rewritten: await quantizeStaticBest(ctx, { perChannel: options.perChannel !== false, calibration: options.calibration as Tensor[][] | undefined }),
        };
      case 'fp16':
        return { rewritten: await fp16(ctx) };
      case 'prune':
        return { rewritten: await prune(ctx, options) };
      case 'distill':
        return await distillStudent(job, p, options, deps);
    }
  } catch (e) {
    if (e instanceof GraphEditError) throw new AppError('invalid_model', `${data.method}: ${e.message}`);
    throw e;
  }
}

async function storeChild(bytes: Uint8Array, method: string, deps: CompressDeps) {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await deps.store.put(modelArtifactKey(sha256), Buffer.from(bytes));
  const handle: ModelHandle = { sha256, path: await localModelPath(deps.store, sha256, deps.cacheDir) };
  try {
    return { handle, sig: await deps.engine.inspect(handle) };
  } catch (e) {
    throw new AppError('invalid_model', `the ${method} result does not load in onnxruntime: ${(e as Error).message}`);
  }
}

function checkStudentSignature(parent: VersionRecord, sig: { inputs: TensorSpec[]; outputs: TensorSpec[] }) {
  const same = (a: TensorSpec[], b: TensorSpec[]) =>
    a.length === b.length && a.every((t, i) => t.name === b[i]!.name && t.datatype === b[i]!.datatype && t.shape.length === b[i]!.shape.length);
  if (!same(sig.inputs, parent.inputs) || !same(sig.outputs, parent.outputs))
    throw new AppError('internal', "the distilled student does not have its teacher's signature");
}

/** The dataset's figures: accuracy (or RMSE) against its target before and after, on every row. */
async function datasetReport(
  p: Parent,
  outAfter: Record<string, RawTensor> | undefined,
  distilled?: Awaited<ReturnType<typeof distill>>,
  details?: Record<string, unknown>,
): Promise<DatasetReport | undefined> {
  const { rows, outBefore } = p;
  if (!rows || !outBefore || !outAfter) return undefined;
  const [b, a] = [score(outBefore, rows), score(outAfter, rows)];
  if (distilled && details) heldOutAgreement(distilled, outBefore, outAfter, details);
  const cmp = compareOutputs(outBefore, outAfter);
  return {
    id: rows.id,
    rows: rows.rows,
    features: rows.features,
    ...(rows.target ? { target: rows.target } : {}),
    ...(b.accuracy !== undefined ? { accuracyBefore: b.accuracy, accuracyAfter: a.accuracy } : {}),
    ...(b.rmse !== undefined ? { rmseBefore: b.rmse, rmseAfter: a.rmse } : {}),
    maxAbsDiff: cmp.maxAbsDiff,
    ...(cmp.argmaxAgreement !== undefined ? { argmaxAgreement: cmp.argmaxAgreement } : {}),
  };
}

/** Methods whose point on a CPU is speed: a result slower than its parent at both batch sizes is refused. */
const SPEED_GATED = new Set(['quantize-int8', 'quantize-int8-static', 'prune']);
/** Slower by more than this share at both sizes counts (what one measurement's noise cannot make). */
const SLOWER_BY = 0.1;
const slowerAtBoth = (s: Awaited<ReturnType<typeof speeds>>) =>
  s.rowsPerSecondAfter < s.rowsPerSecondBefore * (1 - SLOWER_BY) && s.rowsPerSecondBatch1After < s.rowsPerSecondBatch1Before * (1 - SLOWER_BY);

/** The report's headline figures: the lowest cosine and top-1 over the outputs, the largest difference. */
function summaryOf(outputs: OutputFigures[]) {
  const cos = outputs.flatMap((o) => (o.cosine !== undefined ? [o.cosine] : []));
  const top = outputs.flatMap((o) => (o.top1 !== undefined ? [o.top1] : []));
  return {
    maxAbsDiff: Math.max(0, ...outputs.map((o) => o.maxAbsDiff ?? 0)),
    ...(top.length ? { argmaxAgreement: Math.min(...top) } : {}),
    ...(cos.length ? { cosine: Math.min(...cos) } : {}),
  };
}

/** Agreement on the rows the student never trained on. */
function heldOutAgreement(
  d: Awaited<ReturnType<typeof distill>>,
  outBefore: Record<string, RawTensor>,
  outAfter: Record<string, RawTensor>,
  details: Record<string, unknown>,
) {
  const held = d.heldOut;
  const pick = (t: RawTensor): RawTensor => ({
    type: t.type,
    dims: [held.length, ...t.dims.slice(1)],
    data: takeRows(
      t.data as Float32Array,
      t.dims.slice(1).reduce((x, y) => x * y, 1),
      held,
    ),
  });
  const k = d.plan.primary;
  const cmp = compareOutputs({ [k]: pick(outBefore[k]!) }, { [k]: pick(outAfter[k]!) });
  details.heldOutMaxAbsDiff = cmp.maxAbsDiff;
  if (cmp.argmaxAgreement !== undefined) details.heldOutAgreement = cmp.argmaxAgreement;
}

/** Rows per second of parent and child at batch 1 and BATCH. */
async function speeds(p: Parent, child: ModelHandle, spatial: number, deps: CompressDeps) {
  const one = samplesFor(p.bytes, 1, 2, spatial).feeds;
  const many = samplesFor(p.bytes, BATCH, 3, spatial).feeds;
  return {
    rowsPerSecondBefore: await rowsPerSecond(deps.engine, p.handle, many, BATCH),
    rowsPerSecondAfter: await rowsPerSecond(deps.engine, child, many, BATCH),
    rowsPerSecondBatch1Before: await rowsPerSecond(deps.engine, p.handle, one, 1),
    rowsPerSecondBatch1After: await rowsPerSecond(deps.engine, child, one, 1),
  };
}

async function register(
  job: Progress,
  data: CompressJob,
  p: Parent,
  sha256: string,
  sig: { inputs: TensorSpec[]; outputs: TensorSpec[] },
  options: Record<string, unknown>,
  report: CompressReport,
  deps: CompressDeps,
) {
  const processing = keptProcessing(p.record, sig);
  const { record } = await deps.registry.createVersion(
    data.registerAs,
    {
      ...processing.fields,
      sha256,
      bytes: report.bytesAfter,
      inputs: sig.inputs,
      outputs: sig.outputs,
      lineage: {
        parent: { name: p.record.name, version: p.record.version },
        method: data.method,
        options: lineageOptions(options),
        job: job.id,
        ...(p.rows ? { dataset: p.rows.id } : {}),
        tenant: data.tenant ?? 'default',
        keyId: data.keyId ?? null,
        ...(processing.dropped ? { processingDropped: processing.dropped } : {}),
      },
      metrics: { compression: report },
      // Same inputs and outputs as the parent, so the same meaning: task, target, features, classes.
      ...(p.record.metadata ? { metadata: p.record.metadata } : {}),
    },
    { tenant: data.tenant ?? 'default', platform: data.platform ?? false },
  );
  return { name: record.name, version: record.version };
}

/**
 * The parent's declared processing (and the files it reads), kept by the compressed child when its
 * inputs and outputs still fit it (compression works on the tensor model underneath); else why not.
 */
function keptProcessing(parent: VersionRecord, sig: { inputs: TensorSpec[]; outputs: TensorSpec[] }): { fields: Partial<VersionRecord>; dropped?: string } {
  if (!parent.processing) return { fields: {} };
  try {
    const processing = checkProcessing(parent.processing, { ...sig, files: parent.files });
    return { fields: { processing, ...(parent.files ? { files: parent.files } : {}) } };
  } catch (e) {
    return { fields: {}, dropped: (e as Error).message };
  }
}

/** Calibration tensors are data, not settings: lineage and report say how many, not what. */
function lineageOptions(options: Record<string, unknown>): Record<string, unknown> {
  const { calibration, ...rest } = options;
  return calibration ? { ...rest, calibration: `${(calibration as unknown[]).length} request-supplied feeds` } : rest;
}

export async function compressProcessor(job: Progress, deps: CompressDeps): Promise<{ model: { name: string; version: number }; report: CompressReport }> {
  const data = parseJobData(compressJobSchema, job.data, 'compress');
  const limitS = deps.cfg.MODELQ_COMPRESS_TIMEOUT_S ?? 86400;
  const deadline = new JobDeadline(limitS * 1000, 'MODELQ_COMPRESS_TIMEOUT_S', 'the compression', `${limitS} s`);
  try {
    return await deadline.race(compress(job, data, deps, deadline));
  } catch (e) {
    throw toJobError(e);
  }
}

async function compress(job: Progress, data: CompressJob, deps: CompressDeps, deadline: JobDeadline) {
  const options = methodOptionsOf(data);
  const p = await loadParent(job, data, deps);
  const samples = await runnableSamples(deps.engine, p.handle, p.bytes);
  const tolerance = toleranceFor(data.method, data.tolerance);
  const measure = await measureSet(deps.engine, p.handle, p.bytes, samples.spatial, p.rows, p.outBefore, p.samples);
  const ctx: RewriteCtx = {
    engine: deps.engine,
    parent: p.handle,
    before: p.bytes,
    samples,
    measure,
    tolerance,
    ...(p.rows ? { rows: p.rows } : {}),
    ...(deps.cacheDir ? { cacheDir: deps.cacheDir } : {}),
  };
  const { rewritten, distilled } = (await rewrite(job, data, p, options, ctx, deps)) as {
    rewritten: Rewritten;
    distilled?: Awaited<ReturnType<typeof distill>>;
  };
  await job.updateProgress({ step: 'rewritten' });
  const { handle, sig } = await storeChild(rewritten.bytes, data.method, deps);
  if (data.method === 'distill') checkStudentSignature(p.record, sig);
  const { comparison, childOut } = await compareOn(deps.engine, measure, handle);
  const outputs = comparison.figures();
  const accuracy = p.rows ? accuracyOf(p.rows, measure.parentOut[0]!, childOut[0]!) : undefined;
  const dataset = await datasetReport(p, childOut[0], distilled, rewritten.details);
  const speed = await speeds(p, handle, samples.spatial, deps);
  const verdict: Verdict = { data: measure.data, source: p.source, rows: measure.rows, outputs, tolerance, ...judge(outputs, tolerance, accuracy) };
  if (SPEED_GATED.has(data.method) && slowerAtBoth(speed)) {
    verdict.slower = true;
    if (!data.allowSlower) {
      verdict.passed = false;
      verdict.failures.push('slower than its parent at batch 1 and at batch ' + BATCH + ' (allowSlower registers it anyway)');
    }
  }
  const summary = summaryOf(outputs);
  const report: CompressReport = {
    method: data.method,
    options: lineageOptions(options),
    bytesBefore: p.bytes.length,
    bytesAfter: rewritten.bytes.length,
    ...speed,
    batchSize: BATCH,
    ...summary,
    sampleShape: samples.shapes,
    sampleInputs: samples.values,
    ...(dataset ? { dataset } : {}),
    verdict,
    cpu: cpuFeatures(),
    details: rewritten.details,
  };
  if (!verdict.passed) {
    await job.updateProgress({ step: 'refused', report });
    throw new AppError(
      'invalid_model',
      `${data.method} refused, not registered: ${verdict.failures.join('; ')} (measured on ${verdict.rows} ${verdict.data} rows)`,
    );
  }
  deadline.check(); // a compression past its limit has failed: it registers nothing
  return { model: await register(job, data, p, handle.sha256, sig, options, report, deps), report };
}

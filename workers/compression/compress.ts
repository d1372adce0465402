// Processor for `compress` jobs: rewrite the parent's ONNX graph (workers/onnx) or distill a student
// from it (distill.ts), check that the result loads, measure both on this worker's engine (on
// generated inputs, and on every row of the job's dataset when it names one), and register the
// result as a new version whose lineage points at the parent. A model that cannot be compressed
// fails the job with the reason.
import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { keyPrefix, type Config } from '../../core/config.ts';
import { AppError } from '../../core/errors.ts';
import { compressJobSchema, methodOptions, type CompressReport, type DatasetReport } from '../../core/jobs/compress.ts';
import { toFloat16 } from '../onnx/fp16.ts';
import { GraphEditError, parameterCount } from '../onnx/graph.ts';
import { pruneMagnitude, pruneStructured } from '../onnx/prune.ts';
import { quantizeInt8 } from '../onnx/quantize.ts';
import { modelArtifactKey, type Registry, type VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { toOrtType, type RawTensor, type TensorSpec } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { takeRows } from '../trainer/data.ts';
import { argmaxRows, compareOutputs, loadEvalRows, runRows, score, type EvalRows } from './dataset.ts';
import { distill, type DistillOptions } from './distill.ts';

export interface CompressDeps { engine: Engine; store: ArtifactStore; registry: Registry; redis: Redis; cfg: Config; cacheDir?: string }

const BATCH = 32;

/** Sizes for open dimensions: the batch, then 3x48x192 for image-like inputs, else 16. */
function sampleShape(spec: TensorSpec): number[] {
  const image = spec.shape.length === 4;
  return spec.shape.map((d, i) => (d >= 0 ? d : i === 0 ? BATCH : image ? [BATCH, 3, 48, 192][i]! : 16));
}

function sampleFeeds(inputs: TensorSpec[], seed = 1): Record<string, RawTensor> {
  let s = seed;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const feeds: Record<string, RawTensor> = {};
  for (const spec of inputs) {
    const dims = sampleShape(spec);
    const n = dims.reduce((a, b) => a * b, 1);
    if (spec.datatype !== 'FP32') throw new AppError('bad_request', `input "${spec.name}" is ${spec.datatype}; sample inputs are made for FP32 inputs only`);
    feeds[spec.name] = { type: toOrtType('FP32'), dims, data: Float32Array.from({ length: n }, rnd) };
  }
  return feeds;
}

const copyFeeds = (f: Record<string, RawTensor>) => Object.fromEntries(Object.entries(f).map(([k, t]) => [k, { ...t, data: (t.data as Float32Array).slice() }]));

async function rowsPerSecond(engine: Engine, model: ModelHandle, feeds: Record<string, RawTensor>): Promise<number> {
  await engine.run(model, copyFeeds(feeds)); // load and warm
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 1000 || runs < 5) {
    await engine.run(model, copyFeeds(feeds));
    runs++;
  }
  return (runs * BATCH) / ((performance.now() - t0) / 1000);
}

export async function compressProcessor(job: Pick<Job, 'id' | 'data' | 'updateProgress'>, deps: CompressDeps): Promise<{ model: { name: string; version: number }; report: CompressReport }> {
  const data = parseJobData(compressJobSchema, job.data, 'compress');
  try {
    const parent: VersionRecord = await deps.registry.getVersion(data.model.name, data.model.version);
    const optsParse = methodOptions[data.method].safeParse(data.options);
    if (!optsParse.success) throw new AppError('bad_request', `options for ${data.method}: ${optsParse.error.issues[0]!.message}`);
    const options = optsParse.data as Record<string, unknown>;
    const before = await deps.store.get(modelArtifactKey(parent.sha256));
    const parentHandle: ModelHandle = { sha256: parent.sha256, path: await localModelPath(deps.store, parent.sha256, deps.cacheDir) };
    // With a dataset: its rows through the parent first (for distill, these are the teacher's outputs).
    let rows: EvalRows | undefined;
    let outBefore: Record<string, RawTensor> | undefined;
    if (data.dataset) {
      rows = await loadEvalRows({ ...deps, prefix: keyPrefix(deps.cfg) }, data, parent);
      outBefore = await runRows(deps.engine, parentHandle, rows);
      await job.updateProgress({ step: 'dataset', rows: rows.rows });
    }
    let after: Uint8Array;
    let details: Record<string, unknown> = {};
    let distilled: Awaited<ReturnType<typeof distill>> | undefined;
    try {
      if (data.method === 'quantize-int8') {
        const r = quantizeInt8(before, { perChannel: options.perChannel === true });
        after = r.bytes;
        details = { quantized: r.report.quantized, skipped: r.report.skipped };
      } else if (data.method === 'fp16') {
        const r = toFloat16(before);
        after = r.bytes;
        details = { convertedTensors: r.converted };
      } else if (data.method === 'prune') {
        const r = options.structured === true ? pruneStructured(before, options.keep as number) : pruneMagnitude(before, options.sparsity as number);
        after = r.bytes;
        details = { paramsBefore: r.paramsBefore, paramsAfter: r.paramsAfter, layers: r.layers };
      } else {
        if (!rows || !outBefore) throw new AppError('bad_request', 'distill needs a dataset; the teacher labels its rows');
        const o = options as unknown as DistillOptions;
        distilled = await distill(String(job.id), parent, parentHandle, o, rows, outBefore, deps, (p) => job.updateProgress(p as unknown as object));
        after = distilled.bytes;
        details = {
          teacherParams: parameterCount(before), studentParams: parameterCount(after), hidden: o.hidden, temperature: o.temperature,
          epochsRun: distilled.epochsRun, bestEpoch: distilled.bestEpoch, trainRows: rows.rows - distilled.heldOut.length, augmentedRows: distilled.augmentedRows, heldOutRows: distilled.heldOut.length,
        };
      }
    } catch (e) {
      if (e instanceof GraphEditError) throw new AppError('invalid_model', e.message);
      throw e;
    }
    await job.updateProgress({ step: 'rewritten' });
    const sha256 = createHash('sha256').update(after).digest('hex');
    const key = modelArtifactKey(sha256);
    await deps.store.put(key, Buffer.from(after));
    const handle: ModelHandle = { sha256, path: await localModelPath(deps.store, sha256, deps.cacheDir) };
    let sig;
    try {
      sig = await deps.engine.inspect(handle);
    } catch (e) {
      throw new AppError('invalid_model', `the ${data.method} result does not load in onnxruntime: ${(e as Error).message}`);
    }
    const feeds = sampleFeeds(parent.inputs);
    const [outA, outB] = [await deps.engine.run(parentHandle, copyFeeds(feeds)), await deps.engine.run(handle, copyFeeds(feeds))];
    const quality = compareOutputs(outA, outB);
    if (data.method === 'distill') {
      const same = (a: TensorSpec[], b: TensorSpec[]) => a.length === b.length && a.every((t, i) => t.name === b[i]!.name && t.datatype === b[i]!.datatype && t.shape.length === b[i]!.shape.length);
      if (!same(sig.inputs, parent.inputs) || !same(sig.outputs, parent.outputs)) throw new AppError('internal', 'the distilled student does not have its teacher\'s signature');
    }
    let dataset: DatasetReport | undefined;
    if (rows && outBefore) {
      const outAfter = await runRows(deps.engine, handle, rows);
      const [b, a] = [score(outBefore, rows), score(outAfter, rows)];
      dataset = {
        id: rows.id, rows: rows.rows, features: rows.features, ...(rows.target ? { target: rows.target } : {}),
        ...(b.accuracy !== undefined ? { accuracyBefore: b.accuracy, accuracyAfter: a.accuracy } : {}),
        ...(b.rmse !== undefined ? { rmseBefore: b.rmse, rmseAfter: a.rmse } : {}),
        ...compareOutputs(outBefore, outAfter),
      };
      if (distilled) {
        // Agreement on the rows the student never trained on.
        const held = distilled.heldOut;
        const pick = (t: RawTensor): RawTensor => ({
          type: t.type, dims: [held.length, ...t.dims.slice(1)], data: takeRows(t.data as Float32Array, t.dims.slice(1).reduce((x, y) => x * y, 1), held),
        });
        const p = distilled.plan.primary;
        const heldCmp = compareOutputs({ [p]: pick(outBefore[p]!) }, { [p]: pick(outAfter[p]!) });
        details.heldOutMaxAbsDiff = heldCmp.maxAbsDiff;
        if (argmaxRows(outBefore[p]!)) details.heldOutAgreement = heldCmp.argmaxAgreement;
      }
    }
    const report: CompressReport = {
      method: data.method, options, bytesBefore: before.length, bytesAfter: after.length,
      rowsPerSecondBefore: await rowsPerSecond(deps.engine, parentHandle, feeds),
      rowsPerSecondAfter: await rowsPerSecond(deps.engine, handle, feeds),
      batchSize: BATCH, ...quality,
      sampleShape: Object.fromEntries(parent.inputs.map((i) => [i.name, sampleShape(i)])),
      ...(dataset ? { dataset } : {}),
      details,
    };
    const { record } = await deps.registry.createVersion(data.registerAs, {
      sha256, bytes: after.length, inputs: sig.inputs, outputs: sig.outputs,
      lineage: {
        parent: { name: parent.name, version: parent.version }, method: data.method, options, job: job.id, ...(rows ? { dataset: rows.id } : {}),
        tenant: data.tenant ?? 'default', keyId: data.keyId ?? null,
      },
      metrics: { compression: report },
      // Same inputs and outputs as the parent, so the same meaning: task, target, features, classes.
      ...(parent.metadata ? { metadata: parent.metadata } : {}),
    }, { tenant: data.tenant ?? 'default', platform: data.platform ?? false });
    return { model: { name: record.name, version: record.version }, report };
  } catch (e) {
    throw toJobError(e);
  }
}

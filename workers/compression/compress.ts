// Processor for `compress` jobs: rewrite the parent's ONNX graph (core/onnx), check that the result
// loads, measure both on this worker's engine, and register the result as a new version whose
// lineage points at the parent. A model that cannot be compressed fails the job with the reason.
import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import { AppError } from '../../core/errors.ts';
import { compressJobSchema, methodOptions, type CompressReport } from '../../core/jobs/compress.ts';
import { toFloat16 } from '../../core/onnx/fp16.ts';
import { GraphEditError } from '../../core/onnx/graph.ts';
import { pruneMagnitude, pruneStructured } from '../../core/onnx/prune.ts';
import { quantizeInt8 } from '../../core/onnx/quantize.ts';
import { modelArtifactKey, type Registry, type VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { toOrtType, type RawTensor, type TensorSpec } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { parseJobData, toJobError } from '../processor.ts';

export interface CompressDeps { engine: Engine; store: ArtifactStore; registry: Registry; cacheDir?: string }

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

function compare(a: Record<string, RawTensor>, b: Record<string, RawTensor>): { maxAbsDiff: number; argmaxAgreement: number } {
  let maxAbsDiff = 0;
  let agree = 0;
  let rows = 0;
  for (const [name, ta] of Object.entries(a)) {
    const tb = b[name];
    if (!tb || Array.isArray(ta.data)) continue;
    const da = ta.data as Float32Array;
    const db = tb.data as Float32Array;
    for (let i = 0; i < da.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(Number(da[i]) - Number(db[i])));
    const c = ta.dims[ta.dims.length - 1] ?? 1;
    for (let r = 0; r < da.length / c; r++) {
      let ia = 0;
      let ib = 0;
      for (let j = 1; j < c; j++) {
        if (da[r * c + j]! > da[r * c + ia]!) ia = j;
        if (db[r * c + j]! > db[r * c + ib]!) ib = j;
      }
      rows++;
      if (ia === ib) agree++;
    }
  }
  return { maxAbsDiff, argmaxAgreement: rows ? agree / rows : 1 };
}

export async function compressProcessor(job: Pick<Job, 'id' | 'data' | 'updateProgress'>, deps: CompressDeps): Promise<{ model: { name: string; version: number }; report: CompressReport }> {
  const data = parseJobData(compressJobSchema, job.data, 'compress');
  try {
    const parent: VersionRecord = await deps.registry.getVersion(data.model.name, data.model.version);
    const optsParse = methodOptions[data.method].safeParse(data.options);
    if (!optsParse.success) throw new AppError('bad_request', `options for ${data.method}: ${optsParse.error.issues[0]!.message}`);
    const options = optsParse.data as Record<string, unknown>;
    const before = await deps.store.get(modelArtifactKey(parent.sha256));
    let after: Uint8Array;
    let details: Record<string, unknown> = {};
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
        throw new AppError('bad_request', 'distill needs the training service, which this worker build does not have yet');
      }
    } catch (e) {
      if (e instanceof GraphEditError) throw new AppError('invalid_model', e.message);
      throw e;
    }
    await job.updateProgress({ step: 'rewritten' });
    const sha256 = createHash('sha256').update(after).digest('hex');
    const key = modelArtifactKey(sha256);
    await deps.store.put(key, Buffer.from(after));
    const path = await localModelPath(deps.store, sha256, deps.cacheDir);
    const parentPath = await localModelPath(deps.store, parent.sha256, deps.cacheDir);
    const handle: ModelHandle = { sha256, path };
    const parentHandle: ModelHandle = { sha256: parent.sha256, path: parentPath };
    let sig;
    try {
      sig = await deps.engine.inspect(handle);
    } catch (e) {
      throw new AppError('invalid_model', `the ${data.method} result does not load in onnxruntime: ${(e as Error).message}`);
    }
    const feeds = sampleFeeds(parent.inputs);
    const [outA, outB] = [await deps.engine.run(parentHandle, copyFeeds(feeds)), await deps.engine.run(handle, copyFeeds(feeds))];
    const quality = compare(outA, outB);
    const report: CompressReport = {
      method: data.method, options, bytesBefore: before.length, bytesAfter: after.length,
      rowsPerSecondBefore: await rowsPerSecond(deps.engine, parentHandle, feeds),
      rowsPerSecondAfter: await rowsPerSecond(deps.engine, handle, feeds),
      batchSize: BATCH, ...quality,
      sampleShape: Object.fromEntries(parent.inputs.map((i) => [i.name, sampleShape(i)])),
      details,
    };
    const { record } = await deps.registry.createVersion(data.registerAs, {
      sha256, bytes: after.length, inputs: sig.inputs, outputs: sig.outputs,
      lineage: { parent: { name: parent.name, version: parent.version }, method: data.method, options, job: job.id },
      metrics: { compression: report },
    });
    return { model: { name: record.name, version: record.version }, report };
  } catch (e) {
    throw toJobError(e);
  }
}

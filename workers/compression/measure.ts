// Measuring a compression on this worker's engine: sample inputs made from the model's own graph,
// rows per second at a batch size, output agreement (max difference, argmax, cosine), and scratch
// copies of candidate models for the engine to load.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { RawTensor } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { DEFAULT_CACHE_DIR } from '../model-cache.ts';
import { SAMPLE_DEFAULTS, sampleFeeds, SPATIAL_CANDIDATES } from '../onnx/sample-inputs.ts';
import { AppError } from '../../core/errors.ts';
import { type EvalRows, runRows } from './dataset.ts';
import { OutputComparison } from './verdict.ts';

/** Rows per engine run in the speed figures. */
export const BATCH: number = SAMPLE_DEFAULTS.batch;
/** Seconds each speed figure runs for at least. Default 1. */
const MEASURE_MS = 1000;

export type Feeds = Record<string, RawTensor>;

export interface Samples {
  feeds: Feeds;
  shapes: Record<string, number[]>;
  values: Record<string, string>;
}

/** Sample inputs for `batch` rows: token ids within the embedding table, normal floats, ... */
export function samplesFor(bytes: Uint8Array, batch = BATCH, seed = 1, spatial?: number): Samples {
  const { feeds, inputs } = sampleFeeds(bytes, batch, seed, spatial);
  return {
    feeds: feeds as unknown as Feeds,
    shapes: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])),
    values: Object.fromEntries(inputs.map((i) => [i.name, i.values])),
  };
}

/**
 * Sample inputs the parent actually runs on: a graph with open spatial sizes may need a particular
 * one (a Reshape to a fixed size after the convolutions), so the candidates are tried in turn.
 * Returns the samples and the spatial size the later batches must use.
 */
export async function runnableSamples(engine: Engine, parent: ModelHandle, bytes: Uint8Array): Promise<Samples & { spatial: number }> {
  let first: Error | undefined;
  for (const spatial of SPATIAL_CANDIDATES) {
    const s = samplesFor(bytes, BATCH, 1, spatial);
    try {
      await engine.run(parent, copyFeeds(s.feeds));
      return { ...s, spatial };
    } catch (e) {
      first ??= e as Error;
      if (!Object.values(s.shapes).some((d) => d.length >= 3)) break; // nothing spatial to vary
    }
  }
  throw new AppError('invalid_model', `the parent does not run on sample inputs: ${first?.message}`);
}

/** A copy: the engine takes ownership of what it is sent. */
export const copyFeeds = (f: Feeds): Feeds =>
  Object.fromEntries(
    Object.entries(f).map(([k, t]) => [k, { ...t, data: Array.isArray(t.data) ? [...t.data] : (t.data as unknown as { slice(): ArrayBufferView }).slice() }]),
  );

export async function rowsPerSecond(engine: Engine, model: ModelHandle, feeds: Feeds, rows: number): Promise<number> {
  await engine.run(model, copyFeeds(feeds)); // load and warm
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < MEASURE_MS || runs < 5) {
    await engine.run(model, copyFeeds(feeds));
    runs++;
  }
  return (runs * rows) / ((performance.now() - t0) / 1000);
}

/** Generated rows the verdict is measured on when the job has no dataset (in runs of BATCH). */
export const GENERATED_ROWS = 256;

/** The data a candidate is measured on, with the parent's outputs there (computed once for every form). */
export interface MeasureSet {
  data: 'dataset' | 'samples' | 'generated';
  rows: number;
  /** Generated or uploaded feeds, one per run; absent for a dataset (its rows run through runRows). */
  feeds?: Feeds[];
  evalRows?: EvalRows;
  parentOut: Record<string, RawTensor>[];
}

export async function measureSet(
  engine: Engine,
  parent: ModelHandle,
  bytes: Uint8Array,
  spatial: number,
  evalRows?: EvalRows,
  outBefore?: Record<string, RawTensor>,
  samples?: { rows: number; feeds: Feeds[] },
): Promise<MeasureSet> {
  if (evalRows && outBefore) return { data: 'dataset', rows: evalRows.rows, evalRows, parentOut: [outBefore] };
  if (samples) {
    const parentOut = [];
    for (const f of samples.feeds) parentOut.push(await engine.run(parent, copyFeeds(f)));
    return { data: 'samples', rows: samples.rows, feeds: samples.feeds, parentOut };
  }
  const feeds = Array.from({ length: GENERATED_ROWS / BATCH }, (_, i) => samplesFor(bytes, BATCH, 101 + i, spatial).feeds);
  const parentOut = [];
  for (const f of feeds) parentOut.push(await engine.run(parent, copyFeeds(f)));
  return { data: 'generated', rows: GENERATED_ROWS, feeds, parentOut };
}

/** The candidate's outputs on the set, compared with the parent's. */
export async function compareOn(
  engine: Engine,
  set: MeasureSet,
  child: ModelHandle,
): Promise<{ comparison: OutputComparison; childOut: Record<string, RawTensor>[] }> {
  const childOut = set.evalRows ? [await runRows(engine, child, set.evalRows)] : [];
  for (const f of set.feeds ?? []) childOut.push(await engine.run(child, copyFeeds(f)));
  const comparison = new OutputComparison();
  set.parentOut.forEach((p, i) => comparison.add(p, childOut[i]!));
  return { comparison, childOut };
}

/** A model the engine can load that is not registered (a candidate, a calibration graph): content-addressed in the cache directory. */
export async function scratchModel(bytes: Uint8Array, cacheDir = DEFAULT_CACHE_DIR): Promise<ModelHandle> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const file = path.join(path.resolve(cacheDir), `${sha256}.onnx`);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, bytes);
  await fs.rename(tmp, file);
  return { sha256, path: file };
}

// Calibration for static int8: the inputs (the request's own, the dataset's rows, or generated
// samples, in that order of preference) and the activation ranges they produce on the engine.
import { AppError } from '../../core/errors.ts';
import { toRaw, type Tensor } from '../../core/tensors.ts';
import type { Engine } from '../engine/engine.ts';
import { calibrationModel, observeRanges, type Ranges, type StaticOptions } from '../onnx/quantize/static.ts';
import { modelInputs } from '../onnx/sample-inputs.ts';
import { decodeModel } from '../onnx/proto.ts';
import { rowFeeds, type EvalRows } from './dataset.ts';
import { BATCH, copyFeeds, type Feeds, samplesFor, scratchModel } from './measure.ts';

/** Dataset rows used for calibration at most, in runs of CALIBRATION_BATCH. Default 256 and 32. */
export const CALIBRATION_ROWS = 256;
export const CALIBRATION_BATCH = 32;

export type CalibrationSource = 'request' | 'dataset' | 'samples' | 'generated';

function requestFeeds(bytes: Uint8Array, given: Tensor[][]): Feeds[] {
  const names = modelInputs(decodeModel(bytes)).map((i) => i.name);
  return given.map((feed, k) => {
    for (const n of names)
      if (!feed.some((t) => t.name === n)) throw new AppError('bad_request', `options.calibration[${k}]: no tensor for the model's input "${n}"`);
    const extra = feed.find((t) => !names.includes(t.name));
    if (extra) throw new AppError('bad_request', `options.calibration[${k}]: the model has no input "${extra.name}"`);
    return Object.fromEntries(feed.map((t) => [t.name, toRaw(t)]));
  });
}

function datasetFeeds(rows: EvalRows): Feeds[] {
  const feeds: Feeds[] = [];
  const n = Math.min(rows.rows, CALIBRATION_ROWS);
  for (let start = 0; start < n; start += CALIBRATION_BATCH) {
    const k = Math.min(CALIBRATION_BATCH, n - start);
    feeds.push(rowFeeds(rows, start, k));
  }
  return feeds;
}

export function calibrationFeeds(
  bytes: Uint8Array,
  given: Tensor[][] | undefined,
  rows: EvalRows | undefined,
  spatial?: number,
  samples?: Feeds[],
): { feeds: Feeds[]; source: CalibrationSource } {
  if (given) return { feeds: requestFeeds(bytes, given), source: 'request' };
  if (rows) return { feeds: datasetFeeds(rows), source: 'dataset' };
  // The request's uploaded rows: the first runs, up to CALIBRATION_ROWS rows.
  if (samples?.length) return { feeds: samples.slice(0, Math.ceil(CALIBRATION_ROWS / BATCH)), source: 'samples' };
  return { feeds: [1, 2, 3, 4].map((seed) => samplesFor(bytes, 8, 100 + seed, spatial).feeds), source: 'generated' };
}

/** Ranges of every activation static quantization needs, over all calibration feeds. */
export async function observeActivations(engine: Engine, bytes: Uint8Array, feeds: Feeds[], opts: StaticOptions, cacheDir?: string): Promise<Ranges> {
  const c = calibrationModel(bytes, opts);
  const handle = await scratchModel(c.bytes, cacheDir);
  const ranges: Ranges = {};
  for (const f of feeds) {
    try {
      observeRanges(ranges, await engine.run(handle, copyFeeds(f)), c.tensors);
    } catch (e) {
      throw new AppError('bad_request', `calibration inputs do not run through the model: ${(e as Error).message}`);
    }
  }
  return ranges;
}

// Drift of a model with declared processing: its requests carry files, which only the workers decode,
// so drift is watched on small summaries of the tensors the processing gives and of the outputs,
// computed on the worker next to the run (workers/processing/drift.ts), one row per file:
//   image input `x` [n,3,H,W] or [n,H,W,3]: `x.mean` and `x.std` per channel (in the layout's channel
//     order, after normalisation), 6 numeric features;
//   audio input `x`: `x.mean` and `x.std` of its samples, or with log-mel features `x.band_mean`, the
//     mean of each mel band over the frames (nMels features when at most MAX_WIDTH, else mean and std);
//   text step `t` (with an attention mask): `t.tokens`, the tokens of the row (special ones included);
//   each FP32 model output [n] or [n, K] with K <= MAX_WIDTH: its values, one feature per column;
//   the post-processing's `label` (argmax): categorical.
// These names are what a reference of such a model profiles (its first N rows, or PUT .../reference
// rows of these values in this order) and what the drift report lists.
import type { Processing, Step } from '../processing/spec.ts';
import type { RawTensor, TensorSpec } from '../tensors.ts';
import type { RowsOf } from './features.ts';

/** Most columns of one summarised tensor profiled one by one. */
export const MAX_WIDTH = 64;

/** The summary tensors drift watches for a processed model, as [rows] or [rows, K] specs. */
export function processedDriftSpecs(m: { processing?: Processing | undefined; outputs: TensorSpec[] }): TensorSpec[] {
  const p = m.processing!;
  const specs: TensorSpec[] = [];
  const f32 = (name: string, width?: number): TensorSpec => ({ name, datatype: 'FP32', shape: width === undefined ? [-1] : [-1, width] });
  for (const s of p.inputs) {
    if (s.type === 'image') specs.push(f32(`${s.input}.mean`, 3), f32(`${s.input}.std`, 3));
    else if (s.type === 'audio') {
      if (s.logMel && s.logMel.nMels <= MAX_WIDTH) specs.push(f32(`${s.input}.band_mean`, s.logMel.nMels));
      else specs.push(f32(`${s.input}.mean`), f32(`${s.input}.std`));
    } else if (s.attentionMask) specs.push(f32(`${s.input}.tokens`));
  }
  for (const o of m.outputs) {
    if (o.datatype !== 'FP32' || o.shape[0] !== -1) continue;
    if (o.shape.length === 1) specs.push(f32(o.name));
    else if (o.shape.length === 2 && o.shape[1]! > 0 && o.shape[1]! <= MAX_WIDTH) specs.push(f32(o.name, o.shape[1]!));
  }
  if (p.post?.argmax) specs.push({ name: 'label', datatype: 'BYTES', shape: [-1] });
  return specs;
}

/** One FP16 value (its bits) as a number. */
function half(h: number): number {
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  const v = e === 0 ? f * 2 ** -24 : e === 31 ? (f ? NaN : Infinity) : (1 + f / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

const valueAt = (t: RawTensor, i: number): number => {
  const v = (t.data as unknown as ArrayLike<number | bigint>)[i]!;
  return t.type === 'float16' ? half(Number(v)) : Number(v);
};

/** Mean and standard deviation of `count` values at `start`, `stride` apart. */
function moments(t: RawTensor, start: number, count: number, stride: number): [number, number] {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < count; i++) {
    const v = valueAt(t, start + i * stride);
    s += v;
    s2 += v * v;
  }
  const mean = s / Math.max(1, count);
  return [mean, Math.sqrt(Math.max(0, s2 / Math.max(1, count) - mean * mean))];
}

/**
 * The input summaries of rows `rows` of a request's feeds (before the run: the engine takes the
 * feeds' buffers over), as [rows.length, K] tensors named as processedDriftSpecs names them.
 */
export function inputSummaries(p: Processing, feeds: Record<string, RawTensor>, rows: number[]): RowsOf[] {
  const out: RowsOf[] = [];
  for (const s of p.inputs) out.push(...stepSummaries(s, feeds, rows));
  return out;
}

function stepSummaries(s: Step, feeds: Record<string, RawTensor>, rows: number[]): RowsOf[] {
  const n = rows.length;
  if (s.type === 'image') {
    const t = feeds[s.input]!;
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const hw = per / 3;
    const mean = new Array<number>(n * 3);
    const std = new Array<number>(n * 3);
    rows.forEach((r, i) => {
      for (let c = 0; c < 3; c++) {
        const [m, sd] = s.layout === 'nchw' ? moments(t, r * per + c * hw, hw, 1) : moments(t, r * per + c, hw, 3);
        mean[i * 3 + c] = m;
        std[i * 3 + c] = sd;
      }
    });
    return [
      { name: `${s.input}.mean`, shape: [n, 3], data: mean },
      { name: `${s.input}.std`, shape: [n, 3], data: std },
    ];
  }
  if (s.type === 'audio') {
    const t = feeds[s.input]!;
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    if (s.logMel && s.logMel.nMels <= MAX_WIDTH) {
      const bands = s.logMel.nMels;
      const frames = per / bands;
      const data = new Array<number>(n * bands);
      rows.forEach((r, i) => {
        for (let b = 0; b < bands; b++) data[i * bands + b] = moments(t, r * per + b * frames, frames, 1)[0];
      });
      return [{ name: `${s.input}.band_mean`, shape: [n, bands], data }];
    }
    const ms = rows.map((r) => moments(t, r * per, per, 1));
    return [
      { name: `${s.input}.mean`, shape: [n], data: ms.map((x) => x[0]) },
      { name: `${s.input}.std`, shape: [n], data: ms.map((x) => x[1]) },
    ];
  }
  if (!s.attentionMask) return [];
  const mask = feeds[s.attentionMask]!;
  const width = mask.dims[1] ?? 0;
  const counts = rows.map((r) => {
    let c = 0;
    for (let j = 0; j < width; j++) c += valueAt(mask, r * width + j);
    return c;
  });
  return [{ name: `${s.input}.tokens`, shape: [n], data: counts }];
}

/**
 * The output summaries of rows `rows` of a run's outputs (post-processing's included): every FP32
 * output [n] or [n, K <= MAX_WIDTH] (a superset of what processedDriftSpecs profiles), and `label`.
 */
export function outputSummaries(out: Record<string, RawTensor>, rows: number[]): RowsOf[] {
  const res: RowsOf[] = [];
  for (const [name, t] of Object.entries(out)) {
    const label = name === 'label' && t.type === 'string' && t.dims.length === 1;
    if (!label && (t.type !== 'float32' || t.dims.length > 2 || (t.dims[1] ?? 1) > MAX_WIDTH)) continue;
    const width = t.dims.length === 2 ? t.dims[1]! : 1;
    const data: unknown[] = [];
    for (const r of rows) for (let k = 0; k < width; k++) data.push(label ? String((t.data as string[])[r]) : valueAt(t, r * width + k));
    res.push({ name, shape: t.dims.length === 2 ? [rows.length, width] : [rows.length], data });
  }
  return res;
}

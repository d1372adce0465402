// Explanations of a model with declared processing (core/processing/explain.ts): the request's files
// or texts become the model's tensors as for any request, then each region of a row (an image patch,
// a run of audio along time, a token) is occluded in turn, and its attribution is the drop of the
// attributed class's score. Image and audio attributions come back as a map over the processing's
// geometry (every pixel of the model's input gets its patch's value; every sample or frame its run's);
// text ones per token, with the tokens.
import { AppError } from '../../core/errors.ts';
import type { ExplainJob, ExplainResult } from '../../core/jobs/explain.ts';
import { fromRaw, type RawTensor } from '../../core/tensors.ts';
import { packRaw, type JobTensor } from '../../core/jobs/infer.ts';
import { AUDIO_SEGMENTS, processedExplainPlan, timeLength } from '../../core/processing/explain.ts';
import { outputSize, type AudioStep, type ImageStep, type TextStep } from '../../core/processing/spec.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { fileFeeds, withPost } from '../processing/feeds.ts';
import { writePixels } from '../processing/image.ts';
import { stepTokenizer } from '../processing/text.ts';
import { toHalf } from '../onnx/half.ts';

export interface ProcessedDeps {
  engine: Pick<Engine, 'run'> & Partial<Pick<Engine, 'threadCount'>>;
  store: ArtifactStore;
  maxPixels?: number | undefined;
}

type Scores = { scores: Float32Array; classes: number };

/** A row's occluded copies: `regions` copies of its feeds, built one at a time into a run. */
interface Occluder {
  regions: number;
  /** Writes copy `k` of row `r` into the run's feeds at position `at`. */
  write(r: number, k: number, run: Record<string, RawTensor>, at: number): void;
}

export async function explainProcessed(data: ExplainJob, model: ModelHandle, deps: ProcessedDeps): Promise<ExplainResult> {
  const p = data.model.processing!;
  const plan = processedExplainPlan({ name: data.model.name, inputs: [], outputs: [], processing: p }, data.patch);
  const step = p.inputs[0]!;
  const feeds = await fileFeeds(p, data.request.inputs, { maxPixels: deps.maxPixels, store: deps.store });
  const rows = Object.values(feeds)[0]!.dims[0]!;
  const plain = withPost(p, await deps.engine.run(model, copyFeeds(feeds), { rows }));
  const scoresOf = (out: Record<string, RawTensor>): Scores => {
    const t = out[data.output];
    if (!t || t.type !== 'float32') throw new AppError('bad_request', `output "${data.output}" is not FP32`);
    return { scores: t.data as Float32Array, classes: t.dims.length > 1 ? t.dims.slice(1).reduce((a, b) => a * b, 1) : 1 };
  };
  const fx = scoresOf(plain);
  const classes = Array.from({ length: rows }, (_, r) => data.classIndex ?? argmax(fx.scores, r * fx.classes, fx.classes));
  if (classes.some((c) => c >= fx.classes)) throw new AppError('bad_request', `explainClass ${data.classIndex} is beyond the output's ${fx.classes} classes`);

  let occ: Occluder;
  let baseline: Record<string, RawTensor>;
  let tokens: string[][] | undefined;
  if (step.type === 'text') {
    const t = await textOccluder(feeds, step, deps.store);
    occ = t.occ;
    baseline = t.baseline;
    tokens = t.tokens;
  } else {
    const grey = step.type === 'image' ? greyRow(step) : silentRow(step);
    occ = step.type === 'image' ? patchOccluder(feeds[step.input]!, step, plan.patch!, grey) : segmentOccluder(feeds[step.input]!, step, grey);
    const t = feeds[step.input]!;
    // A copy: the engine takes the run's buffers over, and the occluder reads `grey` afterwards.
    baseline = { [step.input]: { type: t.type, dims: [1, ...t.dims.slice(1)], data: grey.slice() } as RawTensor };
  }
  const base = scoresOf(await deps.engine.run(model, baseline, { outputs: [data.output], rows: 1 }));

  // Every row's occluded copies, in runs of at most runRows rows (and EXPLAIN bytes), one run per engine thread at a time.
  const jobs: { r: number; k: number }[] = [];
  for (let r = 0; r < rows; r++) for (let k = 0; k < (tokens ? tokens[r]!.length : occ.regions); k++) jobs.push({ r, k });
  const rowBytes = Math.max(1, plan.rowBytes);
  if (data.maxBytes !== undefined && jobs.length * rowBytes > data.maxBytes)
    throw new AppError(
      'bad_request',
      `explaining these rows by occlusion feeds the model ${jobs.length * rowBytes} bytes; the limit is ${data.maxBytes} bytes (MODELQ_EXPLAIN_MAX_BYTES)`,
    );
  const perRun = Math.max(1, Math.min(data.runRows, Math.floor((16 * 2 ** 20) / rowBytes)));
  const drop = new Float32Array(jobs.length);
  const runs: number[] = [];
  for (let s = 0; s < jobs.length; s += perRun) runs.push(s);
  const parallel = Math.max(1, deps.engine.threadCount ?? 1);
  let next = 0;
  const worker = async () => {
    while (next < runs.length) {
      const s = runs[next++]!;
      const n = Math.min(perRun, jobs.length - s);
      const run = emptyLike(feeds, n);
      for (let i = 0; i < n; i++) occ.write(jobs[s + i]!.r, jobs[s + i]!.k, run, i);
      const out = scoresOf(await deps.engine.run(model, run, { outputs: [data.output], rows: n }));
      for (let i = 0; i < n; i++) {
        const { r } = jobs[s + i]!;
        const c = classes[r]!;
        drop[s + i] = fx.scores[r * fx.classes + c]! - out.scores[i * out.classes + c]!;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, runs.length) }, worker));

  const wanted = data.request.outputs ? new Set(data.request.outputs) : null;
  const outputs: JobTensor[] = [];
  for (const [name, t] of Object.entries(plain)) if (!wanted || wanted.has(name)) outputs.push(packRaw(name, t) ?? fromRaw(name, t));
  if (tokens) {
    const width = Math.max(0, ...tokens.map((t) => t.length));
    const names: string[] = [];
    const attributions = new Float32Array(rows * width);
    let j = 0;
    tokens.forEach((t, r) => {
      for (let k = 0; k < width; k++) names.push(t[k] ?? '');
      for (let k = 0; k < t.length; k++) attributions[r * width + k] = drop[j++]!;
    });
    outputs.push(fromRaw('explain_tokens', { type: 'string', dims: [rows, width], data: names }));
    outputs.push(packRaw('attributions', { type: 'float32', dims: [rows, width], data: attributions })!);
  } else {
    outputs.push(packRaw('attributions', mapOf(step as ImageStep | AudioStep, plan.patch, drop, rows, occ.regions))!);
  }
  return { ok: true, outputs, base: classes.map((c) => base.scores[c]!), classes };
}

function argmax(xs: Float32Array, at: number, n: number): number {
  let best = 0;
  for (let k = 1; k < n; k++) if (xs[at + k]! > xs[at + best]!) best = k;
  return best;
}

/** The engine takes float buffers over: a run gets copies. */
function copyFeeds(feeds: Record<string, RawTensor>): Record<string, RawTensor> {
  const out: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(feeds)) out[k] = { ...t, data: (t.data as Float32Array).slice() } as RawTensor;
  return out;
}

/** Feeds of `n` rows of the same types and row shapes, zeroed. */
function emptyLike(feeds: Record<string, RawTensor>, n: number): Record<string, RawTensor> {
  const out: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(feeds)) {
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const Ctor = (t.data as Float32Array).constructor as new (n: number) => Float32Array;
    out[k] = { type: t.type, dims: [n, ...t.dims.slice(1)], data: new Ctor(n * per) } as RawTensor;
  }
  return out;
}

/** One row of the image step's tensor for a picture all mid-grey (128, 128, 128): what an occluded patch shows. */
function greyRow(step: ImageStep): Float32Array | Uint16Array {
  const size = outputSize(step)!;
  const row = new Float32Array(3 * size.height * size.width);
  writePixels({ data: Buffer.alloc(size.height * size.width * 3, 128), width: size.width, height: size.height }, step, row, 0);
  return step.dtype === 'fp16' ? Uint16Array.from(row, toHalf) : row;
}

/** One row of the audio step's tensor for silence: zeros, or ln(floor) for log-mel features. */
function silentRow(step: AudioStep): Float32Array {
  if (!step.logMel) return new Float32Array(step.length);
  return new Float32Array(step.logMel.nMels * timeLength(step)).fill(Math.log(step.logMel.floor));
}

/** Square patches of the model's input (every channel), `side` pixels, row by row from the top left. */
function patchOccluder(t: RawTensor, step: ImageStep, side: number, grey: ArrayLike<number>): Occluder {
  const { height: H, width: W } = outputSize(step)!;
  const per = 3 * H * W;
  const across = Math.ceil(W / side);
  const src = t.data as Float32Array;
  return {
    regions: Math.ceil(H / side) * across,
    write(r, k, run, at) {
      const dst = run[step.input]!.data as Float32Array;
      dst.set(src.subarray(r * per, (r + 1) * per), at * per);
      const [y0, x0] = [Math.floor(k / across) * side, (k % across) * side];
      for (let y = y0; y < Math.min(H, y0 + side); y++)
        for (let x = x0; x < Math.min(W, x0 + side); x++)
          for (let c = 0; c < 3; c++) {
            const i = step.layout === 'nchw' ? c * H * W + y * W + x : (y * W + x) * 3 + c;
            dst[at * per + i] = grey[i]!;
          }
    },
  };
}

/** AUDIO_SEGMENTS runs along time (samples, or log-mel frames across every band) set to silence. */
function segmentOccluder(t: RawTensor, step: AudioStep, silent: ArrayLike<number>): Occluder {
  const T = timeLength(step);
  const bands = step.logMel ? step.logMel.nMels : 1;
  const per = bands * T;
  const src = t.data as Float32Array;
  const segments = Math.min(AUDIO_SEGMENTS, T);
  return {
    regions: segments,
    write(r, k, run, at) {
      const dst = run[step.input]!.data as Float32Array;
      dst.set(src.subarray(r * per, (r + 1) * per), at * per);
      const [from, to] = segmentBounds(T, segments, k);
      for (let b = 0; b < bands; b++) for (let i = from; i < to; i++) dst[at * per + b * T + i] = silent[b * T + i]!;
    },
  };
}

/** Segment k of `segments` equal runs over [0, T): [floor(k T / s), floor((k + 1) T / s)). */
export const segmentBounds = (T: number, segments: number, k: number): [number, number] => [
  Math.floor((k * T) / segments),
  Math.floor(((k + 1) * T) / segments),
];

/** The attribution map in the input's geometry: [rows, H, W] (each pixel its patch's), [rows, samples or frames]. */
function mapOf(step: ImageStep | AudioStep, side: number | undefined, drop: Float32Array, rows: number, regions: number): RawTensor {
  if (step.type === 'image') {
    const { height: H, width: W } = outputSize(step)!;
    const across = Math.ceil(W / side!);
    const out = new Float32Array(rows * H * W);
    for (let r = 0; r < rows; r++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) out[r * H * W + y * W + x] = drop[r * regions + Math.floor(y / side!) * across + Math.floor(x / side!)]!;
    return { type: 'float32', dims: [rows, H, W], data: out };
  }
  const T = timeLength(step);
  const out = new Float32Array(rows * T);
  for (let r = 0; r < rows; r++)
    for (let k = 0; k < regions; k++) {
      const [from, to] = segmentBounds(T, regions, k);
      out.fill(drop[r * regions + k]!, r * T + from, r * T + to);
    }
  return { type: 'float32', dims: [rows, T], data: out };
}

/**
 * A text step's rows: each token that is not special and not padding is removed in turn (the tokens
 * after it move up one place and the row gets one more pad, mask and type 0). The baseline is the
 * empty text: every such token removed.
 */
async function textOccluder(feeds: Record<string, RawTensor>, step: TextStep, store: ArtifactStore) {
  const tk = await stepTokenizer(step, store);
  const ids = feeds[step.inputIds]!;
  const mask = step.attentionMask ? feeds[step.attentionMask] : undefined;
  const [rows, width] = ids.dims as [number, number];
  const at = (t: RawTensor, i: number) => Number((t.data as unknown as ArrayLike<number | bigint>)[i]!);
  const padId = step.padId ?? tk.padId;
  // Per row, the positions explained and their tokens.
  const positions: number[][] = [];
  const tokens: string[][] = [];
  for (let r = 0; r < rows; r++) {
    const ps: number[] = [];
    for (let j = 0; j < width; j++) {
      const id = at(ids, r * width + j);
      const real = mask ? at(mask, r * width + j) === 1 : id !== padId;
      if (real && !tk.special.has(id)) ps.push(j);
    }
    positions.push(ps);
    tokens.push(ps.map((j) => tk.tok.id_to_token(at(ids, r * width + j)) ?? ''));
  }
  const fed = Object.keys(feeds);
  const padOf = (name: string) => (name === step.inputIds ? padId : 0);
  const put = (t: RawTensor, i: number, v: number) => {
    if (t.data instanceof BigInt64Array) t.data[i] = BigInt(v);
    else (t.data as Int32Array)[i] = v;
  };
  /** Row r of every fed input with the positions in `drop` removed, written at row `to` of `run`. */
  const writeWithout = (r: number, drop: Set<number>, run: Record<string, RawTensor>, to: number) => {
    for (const name of fed) {
      const src = feeds[name]!;
      const dst = run[name]!;
      let w = 0;
      for (let j = 0; j < width; j++) if (!drop.has(j)) put(dst, to * width + w++, at(src, r * width + j));
      while (w < width) put(dst, to * width + w++, padOf(name));
    }
  };
  const baseline = emptyLike(feeds, 1);
  writeWithout(0, new Set(positions[0]), baseline, 0);
  return {
    tokens,
    baseline,
    occ: {
      regions: step.maxLength,
      write: (r: number, k: number, run: Record<string, RawTensor>, to: number) => writeWithout(r, new Set([positions[r]![k]!]), run, to),
    },
  };
}

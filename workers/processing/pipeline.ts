// A pipeline's steps (core/processing/pipeline.ts) run on the worker that took the request: each
// step's model through the engine (its dynamic batcher and threads, as any request), its files
// decoded by the step's declared processing, and a forEach step once per box of an earlier step's
// boxes, on the crop of the image, all boxes of all rows in one run. Every step's model is loaded
// together before the first runs. A step that fails fails the request, naming the step.
import { AppError } from '../../core/errors.ts';
import type { Batching } from '../../core/jobs/infer.ts';
import { isFileSpec, pipelineTextInputs, type Pipeline, type ResolvedStep } from '../../core/processing/pipeline.ts';
import type { ImageStep } from '../../core/processing/spec.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { RawTensor } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { toHalf } from '../onnx/half.ts';
import { stepFeeds, withPost } from './feeds.ts';
import { cropPixels, decodeUpright, FileError, writePixels, type Pixels } from './image.ts';
import { outputSize } from '../../core/processing/spec.ts';

/** A pipeline input as given: files (one per row) or a tensor whose first dimension is the rows. */
/** A tensor, or one file (a text, for inputs that feed a text step) per row. */
export type PipelineValue = RawTensor | Buffer[] | string[];

export interface PipelineDeps {
  engine: Pick<Engine, 'infer' | 'isWarm' | 'warm'>;
  store: ArtifactStore;
  cacheDir?: string | undefined;
  maxPixels?: number | undefined;
  /** MODELQ_PIPELINE_MAX_CROPS: crops one run of a forEach step may cut (rows x boxes). */
  maxCrops?: number | undefined;
}

const DEFAULT_MAX_CROPS = 4096;

/** Rows per engine run of a step, when its model batches. */
const MAX_BATCH = 64;

type Typed = Float32Array;
/** The elements of a tensor's data, as an indexable list (typed arrays and string lists alike). */
const items = (t: RawTensor) => t.data as unknown as { length: number; slice(a: number, b: number): RawTensor['data'] };

const isBatchable = (s: ResolvedStep) => [...s.modelInputs, ...s.modelOutputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);

/** Rows [from, to) of a tensor whose first dimension is the rows. */
export function sliceRows(t: RawTensor, from: number, to: number): RawTensor {
  const rows = t.dims[0]!;
  const per = rows ? items(t).length / rows : 0;
  return { type: t.type, dims: [to - from, ...t.dims.slice(1)], data: items(t).slice(from * per, to * per) };
}

/** Tensors of the same type and trailing dimensions, joined along the rows. */
export function concatRows(parts: RawTensor[]): RawTensor {
  const first = parts[0]!;
  const rows = parts.reduce((a, p) => a + p.dims[0]!, 0);
  if (Array.isArray(first.data)) return { type: first.type, dims: [rows, ...first.dims.slice(1)], data: parts.flatMap((p) => p.data as string[]) };
  const total = parts.reduce((a, p) => a + items(p).length, 0);
  const Ctor = (first.data as Typed).constructor as new (n: number) => Typed;
  const data = new Ctor(total);
  let at = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, at);
    at += items(p).length;
  }
  return { type: first.type, dims: [rows, ...first.dims.slice(1)], data };
}

/** A step's failure, naming the step; its code and whether a retry may help are kept. */
function stepError(s: ResolvedStep, e: unknown): Error {
  const msg = `pipeline step "${s.name}" (model ${s.model}@${s.version}): ${e instanceof Error ? e.message : String(e)}`;
  if (e instanceof AppError) return new AppError(e.code, msg, e.retryable);
  return new AppError('internal', msg, true);
}

export class PipelineRunner {
  /** The pipeline inputs that are texts (they feed a step's text processing), not files. */
  readonly textInputs: Set<string>;

  private constructor(
    readonly pipeline: Pipeline,
    private readonly d: PipelineDeps,
    readonly handles: Map<string, ModelHandle>,
  ) {
    this.textInputs = pipelineTextInputs(pipeline);
  }

  /** The runner, with each step's model file local (downloaded once per machine, checked against its signature). */
  static async open(pipeline: Pipeline, d: PipelineDeps): Promise<PipelineRunner> {
    const handles = new Map<string, ModelHandle>();
    await Promise.all(
      pipeline.steps.map(async (s) => {
        const path = await localModelPath(d.store, s.sha256, d.cacheDir).catch((e: unknown) => {
          throw stepError(s, e);
        });
        handles.set(s.name, { sha256: s.sha256, path, label: `${s.model}@${s.version}` });
      }),
    );
    return new PipelineRunner(pipeline, d, handles);
  }

  /** Whether every step's model is loaded on every engine thread. */
  isWarm(): boolean {
    return [...this.handles.values()].every((h) => this.d.engine.isWarm(h.sha256));
  }

  /** Loads every step's model, together. */
  async warm(): Promise<void> {
    await Promise.all(
      this.pipeline.steps.map((s) =>
        this.d.engine.warm(this.handles.get(s.name)!).catch((e: unknown) => {
          throw stepError(s, e);
        }),
      ),
    );
  }

  /** One request: the pipeline's inputs (files or tensors, the same rows each) -> its outputs. */
  async run(given: Record<string, PipelineValue>, signal?: AbortSignal): Promise<Record<string, RawTensor>> {
    const p = this.pipeline;
    const values = new Map<string, PipelineValue>();
    let rows = -1;
    for (const inp of p.inputs) {
      const v = given[inp.name];
      if (v === undefined) throw new AppError('bad_request', `missing input "${inp.name}"`);
      if (isFileSpec(inp) !== Array.isArray(v)) throw new AppError('bad_request', `input "${inp.name}" must be ${isFileSpec(inp) ? 'files' : 'a tensor'}`);
      const n = Array.isArray(v) ? v.length : v.dims[0]!;
      if (rows >= 0 && n !== rows) throw new AppError('bad_request', `input "${inp.name}" has ${n} rows; the other inputs have ${rows}`);
      rows = n;
      values.set(inp.name, v);
    }
    for (const s of p.steps) {
      try {
        const out = s.forEach ? await this.runForEach(s, values, rows, signal) : await this.runStep(s, values, signal);
        for (const [k, t] of Object.entries(out)) values.set(`${s.name}.${k}`, t);
      } catch (e) {
        throw stepError(s, e);
      }
    }
    const out: Record<string, RawTensor> = {};
    for (const [k, r] of Object.entries(p.outputs)) {
      const v = values.get(r);
      if (!v || Array.isArray(v)) throw new AppError('internal', `pipeline output "${k}": "${r}" was not made`);
      out[k] = v;
    }
    return out;
  }

  private async runStep(s: ResolvedStep, values: Map<string, PipelineValue>, signal?: AbortSignal): Promise<Record<string, RawTensor>> {
    const feeds: Record<string, RawTensor> = {};
    // Text steps first: their field's texts become the model inputs they feed.
    for (const proc of s.processing?.inputs ?? []) {
      if (proc.type !== 'text') continue;
      const v = values.get(s.inputs[proc.input]!);
      if (!Array.isArray(v)) throw new AppError('internal', `text "${proc.input}" takes texts`);
      try {
        Object.assign(feeds, await stepFeeds(v, proc, { maxPixels: this.d.maxPixels, store: this.d.store }));
      } catch (e) {
        throw e instanceof AppError ? new AppError(e.code, `text "${proc.input}": ${e.message}`) : e;
      }
    }
    for (const inp of s.modelInputs) {
      if (feeds[inp.name]) continue;
      const v = values.get(s.inputs[inp.name]!)!;
      const proc = s.processing?.inputs.find((x) => x.input === inp.name);
      if (proc) {
        if (!Array.isArray(v)) throw new AppError('internal', `input "${inp.name}" takes files`);
        try {
          Object.assign(feeds, await stepFeeds(v, proc, { maxPixels: this.d.maxPixels }));
        } catch (e) {
          throw e instanceof AppError ? new AppError(e.code, `input "${inp.name}": ${e.message}`) : e;
        }
      } else {
        if (Array.isArray(v)) throw new AppError('internal', `input "${inp.name}" takes a tensor`);
        // A copy: the engine hands its feeds' buffers to its thread, and the value may feed another step or be an output.
        feeds[inp.name] = { type: v.type, dims: [...v.dims], data: items(v).slice(0, items(v).length) };
      }
    }
    return withPost(s.processing, await this.runModel(s, feeds, signal));
  }

  /** The step's model on any number of rows: in runs of MAX_BATCH when it batches, else one row at a time. */
  private async runModel(s: ResolvedStep, feeds: Record<string, RawTensor>, signal?: AbortSignal): Promise<Record<string, RawTensor>> {
    const handle = this.handles.get(s.name)!;
    const batchable = isBatchable(s);
    const rows = Object.values(feeds)[0]!.dims[0]!;
    const step = batchable ? MAX_BATCH : 1;
    const settings: Batching = { maxBatch: MAX_BATCH, maxDelayMs: 0, instances: 1, batchable };
    if (rows <= step) return this.d.engine.infer(handle, feeds, settings, batchable, signal);
    const parts: Record<string, RawTensor>[] = [];
    for (let r = 0; r < rows; r += step) {
      const part = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, sliceRows(t, r, Math.min(rows, r + step))]));
      parts.push(await this.d.engine.infer(handle, part, settings, batchable, signal));
    }
    return Object.fromEntries(Object.keys(parts[0]!).map((k) => [k, concatRows(parts.map((x) => x[k]!))]));
  }

  /** Once per box: the crops of every row's boxes as one image batch [n*k, ...], the outputs back as [n, k, ...]. */
  private async runForEach(s: ResolvedStep, values: Map<string, PipelineValue>, rows: number, signal?: AbortSignal): Promise<Record<string, RawTensor>> {
    const fe = s.forEach!;
    const boxes = values.get(fe.boxes);
    const files = values.get(fe.image);
    if (!boxes || Array.isArray(boxes) || !(boxes.data instanceof Float32Array) || boxes.dims.length !== 3 || boxes.dims[2] !== 4)
      throw new AppError('bad_request', `forEach.boxes "${fe.boxes}" must be FP32 [n, k, 4]`);
    if (!Array.isArray(files)) throw new AppError('internal', `forEach.image "${fe.image}" must be files`);
    const k = boxes.dims[1]!;
    const maxCrops = this.d.maxCrops ?? DEFAULT_MAX_CROPS;
    if (rows * k > maxCrops)
      throw new AppError('bad_request', `${rows} rows x ${k} boxes of "${fe.boxes}" are ${rows * k} crops, over MODELQ_PIPELINE_MAX_CROPS (${maxCrops})`);
    const input = fe.input ?? s.modelInputs[0]!.name;
    const proc = s.processing!.inputs.find((x) => x.input === input) as ImageStep;
    const size = outputSize(proc)!;
    const per = size.width * size.height * 3;
    const crops = new Float32Array(rows * k * per);
    const empty: boolean[] = [];
    for (let i = 0; i < rows; i++) {
      let px: Pixels;
      try {
        px = await decodeUpright(Buffer.from(files[i]!), this.d.maxPixels);
      } catch (e) {
        throw new FileError(`${rows > 1 ? `file ${i}: ` : ''}${(e as Error).message}`);
      }
      const made = await Promise.all(
        Array.from({ length: k }, async (_, j) => {
          const b = (boxes.data as Float32Array).subarray((i * k + j) * 4, (i * k + j + 1) * 4);
          const region = boxRegion(b, px, fe.units);
          if (!region) return null;
          return cropPixels(px, region, proc);
        }),
      );
      made.forEach((c, j) => {
        empty.push(!c);
        if (c) writePixels(c, proc, crops, (i * k + j) * per);
      });
    }
    const n = rows * k;
    const dims = proc.layout === 'nchw' ? [n, 3, size.height, size.width] : [n, size.height, size.width, 3];
    const feed: RawTensor = proc.dtype === 'fp16' ? { type: 'float16', dims, data: Uint16Array.from(crops, toHalf) } : { type: 'float32', dims, data: crops };
    if (n === 0) {
      return Object.fromEntries(
        s.modelOutputs.map((o) => [o.name, { type: 'float32', dims: [rows, 0, ...o.shape.slice(1).map((d) => Math.max(d, 0))], data: new Float32Array(0) }]),
      );
    }
    const out = withPost(s.processing, await this.runModel(s, { [input]: feed }, signal));
    const shaped: Record<string, RawTensor> = {};
    for (const [name, t] of Object.entries(out)) {
      const per = items(t).length / n;
      // A box with no area (how detectors pad their outputs) answers zeros and empty labels.
      empty.forEach((e, r) => {
        if (!e) return;
        if (Array.isArray(t.data)) t.data.fill('', r * per, (r + 1) * per);
        else (t.data as Float32Array).fill(0, r * per, (r + 1) * per);
      });
      shaped[name] = { type: t.type, dims: [rows, k, ...t.dims.slice(1)], data: t.data };
    }
    return shaped;
  }
}

/**
 * A box's pixels in the upright image: x1 y1 x2 y2 (fractions of the width and height, or pixels),
 * the left and top edges rounded down and the right and bottom up, clipped to the image; null
 * when nothing of it is left.
 */
export function boxRegion(b: ArrayLike<number>, px: { width: number; height: number }, units: 'normalized' | 'pixels') {
  const [sx, sy] = units === 'normalized' ? [px.width, px.height] : [1, 1];
  const [x1, y1, x2, y2] = [b[0]! * sx, b[1]! * sy, b[2]! * sx, b[3]! * sy];
  if (![x1, y1, x2, y2].every(Number.isFinite)) return null;
  const left = Math.max(0, Math.floor(Math.min(x1, x2)));
  const top = Math.max(0, Math.floor(Math.min(y1, y2)));
  const right = Math.min(px.width, Math.ceil(Math.max(x1, x2)));
  const bottom = Math.min(px.height, Math.ceil(Math.max(y1, y2)));
  if (right - left < 1 || bottom - top < 1) return null;
  return { left, top, width: right - left, height: bottom - top };
}

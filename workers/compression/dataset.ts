// The dataset side of a compression report: which columns feed the model (the request's, else the
// training lineage's, else every numeric column but the target; for a text model's string input, the
// column named as the input or the one text column), the rows as one float32 matrix (or one string
// per row), a model's outputs over all of them in large engine runs, and accuracy (or RMSE) against the target.
import type { Redis } from 'ioredis';
import { datasetRows, DatasetStore, numericValue, type DatasetFormat, type DatasetRecord } from '../../core/datasets.ts';
import { AppError } from '../../core/errors.ts';
import type { CompressJob } from '../../core/jobs/compress.ts';
import type { Registry, VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { toOrtType, type RawTensor, type TensorSpec } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { readFeatureRows } from '../trainer/data.ts';

/** Rows per engine run when a whole dataset goes through a model. */
export const DATASET_BATCH = 4096;

export interface TrainingInfo {
  features?: string[];
  target?: string;
  task?: string;
  classes?: (string | number)[];
}

/** A list in a version's metadata: a JSON list, or (versions from before lists) a JSON string of one. */
const parseList = <T>(json: unknown): T[] | undefined => {
  if (Array.isArray(json)) return json as T[];
  if (typeof json !== 'string' || !json) return undefined;
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? (v as T[]) : undefined;
  } catch {
    return undefined;
  }
};

/** What the model was trained on: its own metadata, else its ancestors' (a compressed model's parent chain). */
export async function trainingInfo(registry: Registry, v: VersionRecord): Promise<TrainingInfo> {
  let cur: VersionRecord | undefined = v;
  for (let depth = 0; cur && depth < 16; depth++) {
    const md = cur.metadata ?? {};
    if (md.features || md.target) {
      const str = (x: unknown) => (typeof x === 'string' ? x : undefined);
      return { features: parseList<string>(md.features), target: str(md.target), task: str(md.task), classes: parseList<string | number>(md.classes) };
    }
    const lineage = cur.lineage as
      { source?: string; hyperparameters?: { features?: string[]; target?: string; task?: string }; parent?: { name: string; version: number } } | undefined;
    if (lineage?.source === 'train' && lineage.hyperparameters) {
      const hp = lineage.hyperparameters;
      return { features: hp.features, target: hp.target, task: hp.task };
    }
    cur = lineage?.parent ? await registry.getVersion(lineage.parent.name, lineage.parent.version).catch(() => undefined) : undefined;
  }
  return {};
}

export interface EvalRows {
  id: string;
  format: DatasetFormat;
  rows: number;
  features: string[];
  target?: string;
  /** The model's single input, and the values one row fills. */
  input: TensorSpec;
  width: number;
  /** Row-major [rows, width] (empty for a text model). */
  x: Float32Array;
  /** A text model's rows: one string per row for its BYTES input. */
  texts?: string[];
  targets: unknown[];
  info: TrainingInfo;
}

/**
 * The model's one float input with fixed sizes after the batch dimension, or its one string input of
 * one value per row ([N] or [N, 1]: a text model's), or a job failure saying why not.
 */
export function rowInput(model: VersionRecord): { input: TensorSpec; width: number; text: boolean } {
  if (model.inputs.length !== 1) throw new AppError('bad_request', `the model has ${model.inputs.length} inputs; dataset rows can feed a model with one input`);
  const input = model.inputs[0]!;
  const rest = input.shape.slice(1);
  if (input.datatype === 'BYTES') {
    if (!rest.every((d) => d === 1))
      throw new AppError('bad_request', `input "${input.name}" has shape [${input.shape.join(', ')}]; dataset rows feed one string per row ([N] or [N, 1])`);
    return { input, width: 1, text: true };
  }
  if (input.datatype !== 'FP32') throw new AppError('bad_request', `input "${input.name}" is ${input.datatype}; dataset rows feed FP32 or BYTES inputs`);
  if (input.shape.length < 2 || rest.some((d) => d < 0))
    throw new AppError('bad_request', `input "${input.name}" has shape [${input.shape.join(', ')}]; dataset rows need fixed sizes after the batch dimension`);
  return { input, width: rest.reduce((a, b) => a * b, 1), text: false };
}

const numericType = (t: string) => t === 'number' || t === 'integer';

export async function loadEvalRows(
  deps: { redis: Redis; prefix: string; store: ArtifactStore; registry: Registry },
  job: CompressJob,
  model: VersionRecord,
): Promise<EvalRows> {
  const ref = job.dataset!;
  const ds = await new DatasetStore(deps.redis, deps.prefix).get(ref.id);
  if (!ds) throw new AppError('bad_request', `dataset "${ref.id}" no longer exists`);
  const { input, width, text } = rowInput(model);
  const info = await trainingInfo(deps.registry, model);
  const columns = new Map(ds.columns.map((c) => [c.name, c.type as string]));
  const target = job.target ?? (info.target && columns.has(info.target) ? info.target : undefined);
  let features = job.features;
  let source = 'the request';
  if (!features && info.features) [features, source] = [info.features, "the model's training lineage"];
  if (!features && text) {
    // The column named as the input, else the one column of text (not numbers) besides the target.
    const texts = ds.columns.filter((c) => !numericType(c.type) && c.name !== target).map((c) => c.name);
    if (columns.has(input.name)) [features, source] = [[input.name], 'the column named as the input'];
    else if (texts.length === 1) [features, source] = [texts, 'the one text column but the target'];
    else
      throw new AppError(
        'bad_request',
        `input "${input.name}" takes one string per row; the dataset has ${texts.length} text columns besides the target (${texts.slice(0, 10).join(', ')}): name one with "features"`,
      );
  }
  if (!features)
    [features, source] = [ds.columns.filter((c) => numericType(c.type) && c.name !== target).map((c) => c.name), 'every numeric column but the target'];
  const missing = features.find((f) => !columns.has(f));
  if (missing) throw new AppError('bad_request', `dataset "${ds.id}" has no column "${missing}" (features from ${source})`);
  if (features.length !== width) {
    throw new AppError(
      'bad_request',
      `input "${input.name}" takes ${width} ${text ? 'string' : 'values'} per row; the dataset gives ${features.length} feature columns (${source}); name them with "features"`,
    );
  }
  const read = text ? await readTextRows(deps.store, ds, features[0]!, target) : await readFeatureRows(deps.store, ds, features, target);
  const rows = 'texts' in read ? read.texts.length : read.rows;
  if (rows === 0) throw new AppError('bad_request', `dataset "${ds.id}" has no rows`);
  const x = 'x' in read ? read.x : new Float32Array(0);
  return {
    id: ds.id,
    format: ds.format,
    rows,
    features,
    ...(target ? { target } : {}),
    input,
    width,
    x,
    ...('texts' in read ? { texts: read.texts } : {}),
    targets: read.targets,
    info,
  };
}

/** Every row's text in `column` (a missing value is the empty string, which a text model scores too) and its raw target. */
async function readTextRows(store: ArtifactStore, ds: DatasetRecord, column: string, target?: string): Promise<{ texts: string[]; targets: unknown[] }> {
  const texts: string[] = [];
  const targets: unknown[] = [];
  for await (const row of datasetRows(await store.read(ds.key), ds.format)) {
    const v = row.values[column];
    texts.push(v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
    if (target !== undefined) {
      const t = row.values[target];
      if (t === null || t === undefined) throw new AppError('bad_request', `dataset line ${row.line}: target "${target}" is missing`);
      targets.push(t);
    }
  }
  return { texts, targets };
}

/** Rows [start, start + k) as the model's input: a float32 slice, or the rows' strings. */
export function rowFeeds(r: EvalRows, start: number, k: number): Record<string, RawTensor> {
  const dims = [k, ...r.input.shape.slice(1)];
  // Copies: the engine takes ownership of what it is sent.
  if (r.texts) return { [r.input.name]: { type: 'string', dims, data: r.texts.slice(start, start + k) } };
  return { [r.input.name]: { type: toOrtType('FP32'), dims, data: r.x.slice(start * r.width, (start + k) * r.width) } };
}

/** Every row through the model in runs of DATASET_BATCH, outputs joined along the batch. */
export async function runRows(engine: Engine, model: ModelHandle, r: EvalRows): Promise<Record<string, RawTensor>> {
  const n = r.rows;
  const parts: Record<string, RawTensor>[] = [];
  for (let start = 0; start < n; start += DATASET_BATCH) {
    const k = Math.min(DATASET_BATCH, n - start);
    parts.push(await engine.run(model, rowFeeds(r, start, k)));
  }
  const out: Record<string, RawTensor> = {};
  for (const name of Object.keys(parts[0] ?? {})) {
    const first = parts[0]![name]!;
    if (Array.isArray(first.data)) {
      out[name] = { type: first.type, dims: [n, ...first.dims.slice(1)], data: parts.flatMap((p) => p[name]!.data as string[]) };
      continue;
    }
    const Ctor = (
      first.data as unknown as { constructor: new (n: number) => ArrayBufferView & { set(a: ArrayLike<unknown>, o: number): void; length: number } }
    ).constructor;
    const total = parts.reduce((a, p) => a + (p[name]!.data as unknown as { length: number }).length, 0);
    const joined = new Ctor(total);
    let o = 0;
    for (const p of parts) {
      const d = p[name]!.data as unknown as ArrayLike<unknown>;
      joined.set(d, o);
      o += d.length;
    }
    out[name] = { type: first.type, dims: [n, ...first.dims.slice(1)], data: joined };
  }
  return out;
}

/** Rows of a [batch, C] output (C > 1): index of the largest value per row. */
export function argmaxRows(t: RawTensor): Int32Array | null {
  if (Array.isArray(t.data) || t.dims.length !== 2 || t.dims[1]! < 2) return null;
  const d = t.data as unknown as ArrayLike<number>;
  const c = t.dims[1]!;
  const rows = t.dims[0]!;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let j = 1; j < c; j++) if (d[r * c + j]! > d[r * c + best]!) best = j;
    out[r] = best;
  }
  return out;
}

/**
 * Largest absolute difference over the float outputs both have, and the share of rows whose argmax
 * agrees over the [batch, C] outputs (C > 1).
 */
export function compareOutputs(a: Record<string, RawTensor>, b: Record<string, RawTensor>): { maxAbsDiff: number; argmaxAgreement: number } {
  let maxAbsDiff = 0;
  let agree = 0;
  let rows = 0;
  for (const [name, ta] of Object.entries(a)) {
    const tb = b[name];
    if (!tb || !(ta.data instanceof Float32Array) || !(tb.data instanceof Float32Array)) continue;
    const da = ta.data;
    const db = tb.data;
    for (let i = 0; i < da.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(da[i]! - db[i]!));
    const ia = argmaxRows(ta);
    const ib = argmaxRows(tb);
    if (!ia || !ib) continue;
    for (let r = 0; r < ia.length; r++) if (ia[r] === ib[r]) agree++;
    rows += ia.length;
  }
  return { maxAbsDiff, argmaxAgreement: rows ? agree / rows : 1 };
}

const classKey = (v: unknown, format: DatasetFormat): string => {
  const n = numericValue(v, format);
  return n !== null ? String(n) : String(v);
};

/**
 * Accuracy against the target for a classifier (class index from an int64 label output or the
 * argmax of the scores, mapped through the training classes when known), RMSE for one value per row.
 */
export function score(out: Record<string, RawTensor>, r: EvalRows): { accuracy?: number; rmse?: number } {
  if (!r.target) return {};
  const tensors = Object.values(out);
  // A string label (a text classifier's) is the class itself.
  const text = tensors.find((t) => Array.isArray(t.data) && t.data.length === r.rows && (t.dims.length === 1 || (t.dims.length === 2 && t.dims[1] === 1)));
  if (text) {
    const predicted = text.data as string[];
    let right = 0;
    for (let i = 0; i < r.rows; i++) if (classKey(predicted[i], 'csv') === classKey(r.targets[i], r.format)) right++;
    return { accuracy: right / r.rows };
  }
  const label = tensors.find((t) => t.data instanceof BigInt64Array && (t.dims.length === 1 || (t.dims.length === 2 && t.dims[1] === 1)));
  const scores = tensors.find((t) => argmaxRows(t) !== null);
  const classes = r.info.classes;
  const regression = r.info.task === 'regression' || (!label && !scores);
  if (!regression) {
    // With the training classes, the scores' argmax says the class (a trained model's label is the
    // class itself, earlier ones its index); without them, the label (or argmax) is the class.
    const idx =
      scores && classes ? Array.from(argmaxRows(scores)!) : label ? Array.from(label.data as BigInt64Array, Number) : Array.from(argmaxRows(scores!)!);
    let right = 0;
    for (let i = 0; i < r.rows; i++) {
      const predicted = classes ? classes[idx[i]!] : idx[i];
      if (predicted !== undefined && classKey(predicted, 'csv') === classKey(r.targets[i], r.format)) right++;
    }
    return { accuracy: right / r.rows };
  }
  const value = tensors.find((t) => t.data instanceof Float32Array && t.data.length === r.rows);
  if (!value) return {};
  const v = value.data as Float32Array;
  let ss = 0;
  for (let i = 0; i < r.rows; i++) {
    const y = numericValue(r.targets[i], r.format);
    if (y === null) throw new AppError('bad_request', `dataset row ${i + 1}: target "${r.target}" is not a number`);
    ss += (v[i]! - y) ** 2;
  }
  return { rmse: Math.sqrt(ss / r.rows) };
}

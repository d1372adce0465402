// The dataset side of a compression report: which columns feed the model (a column-input model's
// inputs each take the column named as it; else the request's, else the training lineage's, else every
// numeric column but the target; for a text model's string input, the column named as the input or
// the one text column), the rows as one float32 matrix (or one string or value per row and input), a
// model's outputs over all of them in large engine runs, and accuracy (or RMSE) against the target.
import type { Redis } from 'ioredis';
import { datasetRows, DatasetStore, isNumericType, numericValue, type DatasetFormat, type DatasetRecord } from '../../core/datasets.ts';
import { AppError } from '../../core/errors.ts';
import type { CompressJob } from '../../core/jobs/compress.ts';
import type { Registry, VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { toOrtType, type RawTensor, type TensorSpec } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { readFeatureRows } from '../training/child/data.ts';
import { isColumnInput, loadColumnRows } from './column-rows.ts';

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
  /** Every column that feeds the model: the numeric input's, then the string inputs'. */
  features: string[];
  target?: string;
  /** The model's numeric input (else its first string input), and the values one row fills (0 without a numeric input). */
  input: TensorSpec;
  width: number;
  /** Row-major [rows, width] of the numeric input (empty without one). */
  x: Float32Array;
  /** A text model's rows: one string per row for each of its BYTES inputs. */
  texts?: { input: TensorSpec; values: string[] }[];
  /**
   * A column-input model's rows (every input one value per row, named as a dataset column): each
   * input's column, a missing number as NaN and a missing string as "", as the model takes them.
   */
  columns?: { input: TensorSpec; values: Float32Array | string[] }[];
  targets: unknown[];
  info: TrainingInfo;
}

interface RowInputs {
  /** The one FP32 input with fixed sizes after the batch dimension, and the values one row fills. */
  numeric?: { input: TensorSpec; width: number };
  /** BYTES inputs of one string per row ([N] or [N, 1]): a text model's text and category columns. */
  strings: TensorSpec[];
}

/**
 * The model's inputs as dataset rows can feed them: at most one float input with fixed sizes after
 * the batch dimension, and string inputs of one value per row ([N] or [N, 1]: a text model's, one
 * per text or category column), or a job failure saying why not.
 */
export function rowInputs(model: VersionRecord): RowInputs {
  const out: RowInputs = { strings: [] };
  for (const input of model.inputs) {
    const rest = input.shape.slice(1);
    if (input.datatype === 'BYTES') {
      if (!rest.every((d) => d === 1))
        throw new AppError('bad_request', `input "${input.name}" has shape [${input.shape.join(', ')}]; dataset rows feed one string per row ([N] or [N, 1])`);
      out.strings.push(input);
      continue;
    }
    if (input.datatype !== 'FP32') throw new AppError('bad_request', `input "${input.name}" is ${input.datatype}; dataset rows feed FP32 or BYTES inputs`);
    if (out.numeric)
      throw new AppError(
        'bad_request',
        `the model has several float inputs ("${out.numeric.input.name}", "${input.name}"); dataset rows feed one (and string inputs)`,
      );
    if (input.shape.length < 2 || rest.some((d) => d < 0))
      throw new AppError('bad_request', `input "${input.name}" has shape [${input.shape.join(', ')}]; dataset rows need fixed sizes after the batch dimension`);
    out.numeric = { input, width: rest.reduce((a, b) => a * b, 1) };
  }
  if (!out.numeric && !out.strings.length) throw new AppError('bad_request', 'the model has no inputs dataset rows can feed');
  return out;
}

/** Which column feeds each string input: the one named as it; a lone string input also the one requested, or the one text column. */
function stringColumns(
  strings: TensorSpec[],
  columns: Map<string, string>,
  requested: string[] | undefined,
  source: string,
  lone: boolean,
  textCols: string[],
): string[] {
  return strings.map((s) => {
    if (lone && requested?.length === 1) return requested[0]!;
    if (requested?.includes(s.name) || (!requested && columns.has(s.name))) return s.name;
    if (lone && !requested && textCols.length === 1) return textCols[0]!;
    throw new AppError(
      'bad_request',
      `input "${s.name}" takes one string per row from the column named as it${lone ? ', or the one named in "features"' : ''}; ${
        columns.has(s.name) ? `"features" (from ${source}) leaves it out` : `the dataset has no column "${s.name}"`
      }`,
    );
  });
}

export async function loadEvalRows(
  deps: { redis: Redis; prefix: string; store: ArtifactStore; registry: Registry },
  job: CompressJob,
  model: VersionRecord,
): Promise<EvalRows> {
  const ref = job.dataset!;
  const ds = await new DatasetStore(deps.redis, deps.prefix).get(ref.id);
  if (!ds) throw new AppError('bad_request', `dataset "${ref.id}" no longer exists`);
  const info = await trainingInfo(deps.registry, model);
  const columns = new Map(ds.columns.map((c) => [c.name, c.type as string]));
  const target = job.target ?? (info.target && columns.has(info.target) ? info.target : undefined);
  if (isColumnInput(model, columns, target)) {
    const c = await loadColumnRows(deps.store, ds, model, target);
    if (c.rows === 0) throw new AppError('bad_request', `dataset "${ds.id}" has no rows`);
    const { rows, columns: cols, targets } = c;
    const features = model.inputs.map((i) => i.name);
    return {
      id: ds.id,
      format: ds.format,
      rows,
      features,
      ...(target ? { target } : {}),
      input: model.inputs[0]!,
      width: 0,
      x: new Float32Array(0),
      columns: cols,
      targets,
      info,
    };
  }
  const { numeric, strings } = rowInputs(model);
  let requested = job.features;
  let source = 'the request';
  if (!requested && info.features) [requested, source] = [info.features, "the model's training lineage"];
  const missing = requested?.find((f) => !columns.has(f));
  if (missing) throw new AppError('bad_request', `dataset "${ds.id}" has no column "${missing}" (features from ${source})`);
  // String inputs first: each takes its column; the numeric input takes the other features.
  const textCols = ds.columns.filter((c) => !isNumericType(c.type) && c.name !== target).map((c) => c.name);
  const lone = strings.length === 1 && !numeric;
  const textFeatures = stringColumns(strings, columns, requested, source, lone, textCols);
  let numericFeatures: string[] = [];
  if (numeric) {
    numericFeatures = requested
      ? requested.filter((f) => !textFeatures.includes(f))
      : ds.columns.filter((c) => isNumericType(c.type) && c.name !== target && !textFeatures.includes(c.name)).map((c) => c.name);
    if (!requested) source = 'every numeric column but the target';
    if (numericFeatures.length !== numeric.width)
      throw new AppError(
        'bad_request',
        `input "${numeric.input.name}" takes ${numeric.width} values per row; the dataset gives ${numericFeatures.length} feature columns (${source}); name them with "features"`,
      );
  } else if (lone && requested && requested.length !== 1) {
    throw new AppError(
      'bad_request',
      `input "${strings[0]!.name}" takes 1 string per row; the dataset gives ${requested.length} feature columns (${source}); name one with "features"`,
    );
  }
  const read = strings.length
    ? await readMixedRows(deps.store, ds, numericFeatures, textFeatures, target)
    : { ...(await readFeatureRows(deps.store, ds, numericFeatures, target)), texts: undefined };
  if (read.rows === 0) throw new AppError('bad_request', `dataset "${ds.id}" has no rows`);
  const texts = read.texts && strings.map((input, i) => ({ input, values: read.texts![i]! }));
  return {
    id: ds.id,
    format: ds.format,
    rows: read.rows,
    features: [...numericFeatures, ...textFeatures],
    ...(target ? { target } : {}),
    input: numeric?.input ?? strings[0]!,
    width: numeric?.width ?? 0,
    x: read.x,
    ...(texts ? { texts } : {}),
    targets: read.targets,
    info,
  };
}

/**
 * Every row's numbers in `numeric` (row-major), its text in each of `text` (a missing value is the
 * empty string, which a text model scores too), and its raw target.
 */
async function readMixedRows(
  store: ArtifactStore,
  ds: DatasetRecord,
  numeric: string[],
  text: string[],
  target?: string,
): Promise<{ rows: number; x: Float32Array; texts: string[][]; targets: unknown[] }> {
  const xs: number[] = [];
  const texts: string[][] = text.map(() => []);
  const targets: unknown[] = [];
  let rows = 0;
  for await (const row of datasetRows(await store.read(ds.key), ds.format)) {
    rows++;
    for (const f of numeric) {
      const n = numericValue(row.values[f], ds.format);
      if (n === null) throw new AppError('bad_request', `dataset line ${row.line}: feature "${f}" is not a number`);
      xs.push(n);
    }
    text.forEach((c, i) => {
      const v = row.values[c];
      texts[i]!.push(v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
    });
    if (target !== undefined) {
      const t = row.values[target];
      if (t === null || t === undefined) throw new AppError('bad_request', `dataset line ${row.line}: target "${target}" is missing`);
      targets.push(t);
    }
  }
  return { rows, x: Float32Array.from(xs), texts, targets };
}

/** Rows [start, start + k) as the model's inputs: a float32 slice and each string input's strings (copies: the engine takes ownership). */
export function rowFeeds(r: EvalRows, start: number, k: number): Record<string, RawTensor> {
  const feeds: Record<string, RawTensor> = {};
  if (r.width > 0)
    feeds[r.input.name] = { type: toOrtType('FP32'), dims: [k, ...r.input.shape.slice(1)], data: r.x.slice(start * r.width, (start + k) * r.width) };
  for (const t of r.texts ?? []) feeds[t.input.name] = { type: 'string', dims: [k, ...t.input.shape.slice(1)], data: t.values.slice(start, start + k) };
  for (const c of r.columns ?? []) {
    const dims = [k, ...c.input.shape.slice(1)];
    feeds[c.input.name] =
      c.values instanceof Float32Array
        ? { type: 'float32', dims, data: c.values.slice(start, start + k) }
        : { type: 'string', dims, data: c.values.slice(start, start + k) };
  }
  return feeds;
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
export function compareOutputs(a: Record<string, RawTensor>, b: Record<string, RawTensor>): { maxAbsDiff: number; argmaxAgreement?: number } {
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
  // No rows with a class to compare: no agreement figure, never a perfect one.
  return rows ? { maxAbsDiff, argmaxAgreement: agree / rows } : { maxAbsDiff };
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

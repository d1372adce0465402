// Distillation, the worker's side: read what the teacher's outputs are (class scores or
// probabilities with their argmax labels, or one regression value), turn the teacher's outputs on
// the dataset into soft targets at the temperature, hold out a tenth of the rows, add noisy copies
// of the training rows that the teacher labels too, and train the student in the training process
// (workers/training/child/run-distill.ts). Returns the student's ONNX bytes.
import path from 'node:path';
import { serialize } from 'node:v8';
import type { Config } from '../../core/config.ts';
import { AppError } from '../../core/errors.ts';
import { DISTILL_DEFAULTS } from '../../core/jobs/compress.ts';
import type { Dim } from '../onnx/builder.ts';
import type { StudentHead } from '../onnx/export-mlp.ts';
import type { VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { RawTensor, TensorSpec } from '../../core/tensors.ts';
import { Rng, takeRows } from '../training/child/data.ts';
import type { DistillProgress, Transfer } from '../training/child/run-distill.ts';
import { runInSandbox } from '../training/child/sandbox.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { argmaxRows, runRows, type EvalRows } from './dataset.ts';
import { graphClasses, spliceStudent, splitAtHead, type TextSplit } from './distill-text.ts';
import { scratchModel } from './measure.ts';

/** The student head's input while it trains, renamed to the front end's feature tensor when spliced. */
const STUDENT_INPUT = 'head_features';

export interface DistillOptions {
  hidden: number[];
  epochs: number;
  temperature: number;
  batchSize: number;
  learningRate: number;
  patience: number;
  seed: number;
  augment?: number;
  noise: number;
}

/** Noisy copies per training row when the request leaves `augment` open: enough for a transfer set of about this many rows. */
export const AUTO_TRANSFER_ROWS = 40_000;
export const MAX_AUTO_AUGMENT = 9;
/** Most float values (rows x width) of the automatic transfer set of a text model: 64M, 256 MB. */
export const AUTO_TRANSFER_VALUES = 64 * 1024 * 1024;

export interface StudentPlan {
  task: 'classification' | 'regression';
  heads: StudentHead[];
  /** The output the student learns: class scores or probabilities, or the value. */
  primary: string;
  outputs: number;
}

const SUPPORTED =
  'a student reproduces class scores or probabilities [batch, C], labels [batch] that are their argmax (int64 indices, or the classes themselves: int64 or strings), or one regression value [batch] or [batch, 1]';
const describe = (s: TensorSpec) => `"${s.name}" (${s.datatype} [${s.shape.join(', ')}])`;
const isProbabilities = (d: Float32Array, c: number) => {
  for (let r = 0; r < d.length / c; r++) {
    let sum = 0;
    for (let j = 0; j < c; j++) {
      const v = d[r * c + j]!;
      if (!(v >= 0 && v <= 1)) return false;
      sum += v;
    }
    if (Math.abs(sum - 1) > 1e-3) return false;
  }
  return true;
};

/**
 * How each of the teacher's outputs is reproduced, judged from its signature and its outputs on the
 * dataset. A label output is the argmax of the class scores, either as the index or (models the
 * platform trains) as the class itself, `classes[argmax]`; `classes` are the teacher's training classes when known.
 */
export function planStudent(outputs: TensorSpec[], teacher: Record<string, RawTensor>, classes?: (string | number)[]): StudentPlan {
  const heads: StudentHead[] = [];
  const labels: string[] = [];
  let value: string | undefined;
  for (const spec of outputs) {
    const t = teacher[spec.name];
    if (!t) throw new AppError('invalid_model', `the teacher did not return its output "${spec.name}"`);
    const shape: Dim[] = spec.shape.map((d, i) => (i === 0 ? (d >= 0 ? d : 'N') : d >= 0 ? d : t.dims[i]!));
    const rank = spec.shape.length;
    if (spec.datatype === 'FP32' && rank === 2 && t.dims[1]! > 1) {
      heads.push({ kind: isProbabilities(t.data as Float32Array, t.dims[1]!) ? 'probabilities' : 'scores', name: spec.name, shape });
    } else if (spec.datatype === 'FP32' && (rank === 1 || (rank === 2 && t.dims[1] === 1))) {
      if (value) throw new AppError('invalid_model', `distill: the teacher has two value outputs, "${value}" and "${spec.name}"; ${SUPPORTED}`);
      value = spec.name;
      heads.push({ kind: 'value', name: spec.name, shape });
    } else if ((spec.datatype === 'INT64' || spec.datatype === 'BYTES') && (rank === 1 || (rank === 2 && t.dims[1] === 1))) {
      labels.push(spec.name);
      heads.push({ kind: 'label', name: spec.name, shape });
    } else {
      throw new AppError('invalid_model', `distill cannot reproduce output ${describe(spec)}: ${SUPPORTED}`);
    }
  }
  const classHeads = heads.filter((h) => h.kind === 'scores' || h.kind === 'probabilities');
  if (classHeads.length > 1)
    throw new AppError(
      'invalid_model',
      `distill: the teacher has ${classHeads.length} class-score outputs (${classHeads.map((h) => `"${h.name}"`).join(', ')}); a student learns one`,
    );
  if (classHeads.length && value)
    throw new AppError('invalid_model', `distill: the teacher mixes class scores ("${classHeads[0]!.name}") and a value ("${value}"); ${SUPPORTED}`);
  if (!classHeads.length && !value) throw new AppError('invalid_model', `distill: the teacher has no output a student can learn; ${SUPPORTED}`);
  if (value) {
    if (labels.length) throw new AppError('invalid_model', `distill: label output "${labels[0]}" has no class scores to come from`);
    return { task: 'regression', heads, primary: value, outputs: 1 };
  }
  const primary = classHeads[0]!.name;
  const am = argmaxRows(teacher[primary]!)!;
  const C = teacher[primary]!.dims[1]!;
  for (const name of labels) {
    const t = teacher[name]!;
    const str = !(t.data instanceof BigInt64Array);
    const l = Array.from(t.data as unknown as ArrayLike<string | bigint>, (v) => (str ? String(v) : Number(v)));
    // The label as the class itself: classes[argmax], when the training classes fit the label's type.
    const table = classes && classes.length === C && classes.every((c) => typeof c === (str ? 'string' : 'number')) ? classes : undefined;
    const agree = (of: (c: number) => string | number) => l.filter((v, r) => v === of(am[r]!)).length;
    const asIndex = str ? 0 : agree((c) => c);
    const asClass = table ? agree((c) => table[c]!) : 0;
    const same = Math.max(asIndex, asClass);
    if (same < 0.99 * am.length)
      throw new AppError(
        'invalid_model',
        `distill: label output "${name}" is not the argmax of "${primary}" (it agrees on ${same} of ${am.length} rows), so a student cannot reproduce it`,
      );
    if (asClass > asIndex) {
      const h = heads.find((x) => x.name === name) as Extract<StudentHead, { kind: 'label' }>;
      h.classes = table;
    }
  }
  return { task: 'classification', heads, primary, outputs: teacher[primary]!.dims[1]! };
}

/** Per row: softmax(logits / T), the logits being the scores, or the log of the probabilities. */
export function softTargets(t: RawTensor, probabilities: boolean, temperature: number): Float32Array {
  const d = t.data as Float32Array;
  const c = t.dims[1]!;
  const out = new Float32Array(d.length);
  const z = new Float64Array(c);
  for (let r = 0; r < d.length / c; r++) {
    let max = -Infinity;
    for (let j = 0; j < c; j++) {
      const v = d[r * c + j]!;
      z[j] = (probabilities ? Math.log(Math.max(v, 1e-7)) : v) / temperature;
      if (z[j]! > max) max = z[j]!;
    }
    let sum = 0;
    for (let j = 0; j < c; j++) sum += z[j] = Math.exp(z[j]! - max);
    for (let j = 0; j < c; j++) out[r * c + j] = z[j]! / sum;
  }
  return out;
}

export interface DistillResult {
  bytes: Uint8Array;
  plan: StudentPlan;
  heldOut: Int32Array;
  augmentedRows: number;
  epochsRun: number;
  bestEpoch: number;
  /** A text model's: width of the feature vector the student head reads. */
  textFeatures?: number;
}

/**
 * `copies` noisy versions of each given row: every feature moved by a normal draw of `noise` times
 * that feature's standard deviation over the rows. The teacher labels them: it can label any input,
 * and a student that sees more of the teacher's function near the data agrees with it more.
 */
export function noisyCopies(x: Float32Array, width: number, ids: Int32Array, copies: number, noise: number, seed: number): Float32Array {
  const sum = new Float64Array(width);
  const sq = new Float64Array(width);
  for (const r of ids) for (let f = 0; f < width; f++) sum[f]! += x[r * width + f]!;
  for (let f = 0; f < width; f++) sum[f]! /= ids.length;
  for (const r of ids) for (let f = 0; f < width; f++) sq[f]! += (x[r * width + f]! - sum[f]!) ** 2;
  const sd = sq.map((v) => Math.sqrt(v / ids.length) * noise);
  const rng = new Rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
  const out = new Float32Array(ids.length * copies * width);
  let o = 0;
  for (let c = 0; c < copies; c++) {
    for (const r of ids) {
      for (let f = 0; f < width; f++) out[o++] = x[r * width + f]! + sd[f]! * gauss();
    }
  }
  return out;
}

export async function distill(
  jobId: string,
  teacher: VersionRecord,
  teacherModel: ModelHandle,
  o: DistillOptions,
  rows: EvalRows,
  teacherOut: Record<string, RawTensor>,
  deps: { store: ArtifactStore; cfg: Config; engine: Engine; cacheDir?: string; teacherBytes?: Uint8Array },
  onProgress?: (p: DistillProgress) => Promise<void> | void,
): Promise<DistillResult> {
  // A text model and a column-input model keep their front end (string encoding; a column model's
  // imputation and encoding too): the student is an MLP over the feature vector the head reads
  // (distill-text.ts), spliced after that front end.
  let text: { split: TextSplit; back?: ModelHandle } | undefined;
  if (rows.texts || rows.columns) {
    const split = splitAtHead(deps.teacherBytes!, { fromInputs: !!rows.columns });
    const front = await scratchModel(split.front, deps.cacheDir);
    const feats = (await runRows(deps.engine, front, rows))[split.feature]!;
    if (!(feats.data instanceof Float32Array) || feats.data.length !== rows.rows * split.width)
      throw new AppError('invalid_model', `distill: the model's feature tensor "${split.feature}" is not float32 [N, ${split.width}]`);
    text = { split, ...(split.back ? { back: await scratchModel(split.back, deps.cacheDir) } : {}) };
    rows = {
      ...rows,
      x: feats.data,
      width: split.width,
      texts: undefined,
      columns: undefined,
      input: { name: split.feature, datatype: 'FP32', shape: [-1, split.width] },
    };
  }
  const labelOut = teacher.outputs.find((o) => o.datatype === 'BYTES' || o.datatype === 'INT64');
  const classes = rows.info.classes ?? (labelOut && deps.teacherBytes ? graphClasses(deps.teacherBytes, labelOut.name) : undefined);
  const plan = planStudent(teacher.outputs, teacherOut, classes);
  const n = rows.rows;
  const nVal = Math.max(1, Math.round(n * DISTILL_DEFAULTS.heldOut));
  if (n - nVal < 2) throw new AppError('bad_request', `dataset "${rows.id}" has ${n} rows; distill needs at least 3 (a tenth is held out)`);
  const perm = new Rng(o.seed ^ 0xd15711).shuffle(Int32Array.from({ length: n }, (_, i) => i));
  const heldOut = perm.slice(0, nVal).sort();
  const train = perm.slice(nVal).sort();
  const probabilities = plan.heads.some((h) => h.name === plan.primary && h.kind === 'probabilities');
  const targets = (t: RawTensor) => (plan.task === 'classification' ? softTargets(t, probabilities, o.temperature) : Float32Array.from(t.data as Float32Array));
  const y = targets(teacherOut[plan.primary]!);
  const C = plan.outputs;
  let xTrain = takeRows(rows.x, rows.width, train);
  let yTrain = takeRows(y, C, train);
  // A text model's feature vector is as wide as its vocabulary: automatic copies stay within AUTO_TRANSFER_VALUES.
  const fit = text ? Math.floor(AUTO_TRANSFER_VALUES / (train.length * rows.width)) - 1 : MAX_AUTO_AUGMENT;
  const auto = Math.min(MAX_AUTO_AUGMENT, fit, Math.max(0, Math.ceil(AUTO_TRANSFER_ROWS / train.length) - 1));
  const copies = text && !text.back ? 0 : (o.augment ?? Math.max(0, auto));
  if (copies > 0) {
    const xs = noisyCopies(rows.x, rows.width, train, copies, o.noise, o.seed ^ 0xa06);
    const ys = targets((await runRows(deps.engine, text?.back ?? teacherModel, { ...rows, x: xs, rows: xs.length / rows.width }))[plan.primary]!);
    const join = (a: Float32Array, b: Float32Array) => {
      const out = new Float32Array(a.length + b.length);
      out.set(a);
      out.set(b, a.length);
      return out;
    };
    [xTrain, yTrain] = [join(xTrain, xs), join(yTrain, ys)];
  }
  const transfer: Transfer = {
    task: plan.task,
    features: rows.width,
    outputs: C,
    xTrain,
    yTrain,
    xVal: takeRows(rows.x, rows.width, heldOut),
    yVal: takeRows(y, C, heldOut),
  };
  const dir = `jobs/compress/${jobId}`;
  const transferKey = `${dir}/transfer.bin`;
  const studentKey = `${dir}/student.onnx`;
  await deps.store.put(transferKey, serialize(transfer));
  try {
    const input = { name: text ? STUDENT_INPUT : rows.input.name, shape: rows.input.shape.map((d, i): Dim => (d >= 0 ? d : i === 0 ? 'N' : d)) };
    const outcome = await runInSandbox(
      {
        kind: 'distill',
        task: {
          jobId,
          transferKey,
          studentKey,
          ...o,
          input,
          heads: plan.heads,
          metadata: { 'modelq.distilled_from': `${teacher.name}@${teacher.version}` },
        },
        cfg: { ...deps.cfg, MODELQ_DATA_DIR: path.resolve(deps.cfg.MODELQ_DATA_DIR) },
      },
      { onProgress },
    );
    let bytes: Uint8Array = new Uint8Array(await deps.store.get(studentKey));
    if (text) bytes = spliceStudent(deps.teacherBytes!, text.split, bytes, STUDENT_INPUT);
    return {
      bytes,
      plan,
      heldOut,
      augmentedRows: train.length * copies,
      epochsRun: outcome.epochsRun,
      bestEpoch: outcome.bestEpoch,
      ...(text ? { textFeatures: text.split.width } : {}),
    };
  } finally {
    await deps.store.deletePrefix(`${dir}/`).catch(() => {});
  }
}

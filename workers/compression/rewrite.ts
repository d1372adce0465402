// The graph rewrites of a compression job, one function per method. Quantization builds every form
// that applies (dynamic with ConvInteger, dynamic with Conv kept float, static QDQ), measures them
// on the job's measuring data and keeps the fastest within the tolerance: ConvInteger is often
// slower than float Conv on CPU, and QDQ is what makes convolutions fast.
import { GraphEditError } from '../onnx/graph.ts';
import { toFloat16 } from '../onnx/fp16.ts';
import { pruneMagnitude, pruneStructured } from '../onnx/prune/index.ts';
import { DYNAMIC_OPS, type DynamicOp, quantizeInt8 } from '../onnx/quantize/dynamic.ts';
import { quantizeStatic } from '../onnx/quantize/static.ts';
import type { RawTensor, Tensor } from '../../core/tensors.ts';
import type { OutputFigures, Tolerance } from '../../core/jobs/compress.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { calibrationFeeds, observeActivations } from './calibrate.ts';
import { score, type EvalRows } from './dataset.ts';
import { BATCH, compareOn, type MeasureSet, rowsPerSecond, type Samples, scratchModel } from './measure.ts';
import { judge } from './verdict.ts';

export interface Rewritten {
  bytes: Uint8Array;
  details: Record<string, unknown>;
}

export interface RewriteCtx {
  engine: Engine;
  parent: ModelHandle;
  before: Uint8Array;
  samples: Samples & { spatial: number };
  /** The data every candidate is judged on, and the bar it must reach there. */
  measure: MeasureSet;
  tolerance: Tolerance;
  rows?: EvalRows;
  cacheDir?: string;
}

interface Form {
  form: string;
  bytes: Uint8Array;
  details: Record<string, unknown>;
}

/**
 * Measures the forms on the job's measuring data and keeps the fastest within the tolerance (the
 * one nearest to it when none is: the verdict then refuses it). Every form's figures are reported.
 */
async function fastest(ctx: RewriteCtx, forms: Form[]): Promise<Rewritten> {
  if (forms.length === 1) return { bytes: forms[0]!.bytes, details: { form: forms[0]!.form, ...forms[0]!.details } };
  const measured = [];
  for (const f of forms) {
    const m = await measureForm(ctx, f);
    const h = await scratchModel(f.bytes, ctx.cacheDir);
    measured.push({ ...f, ...m, rowsPerSecond: await rowsPerSecond(ctx.engine, h, ctx.samples.feeds, BATCH) });
  }
  const pool = measured.some((m) => m.passed) ? measured.filter((m) => m.passed) : [measured.sort((x, y) => y.margin - x.margin)[0]!];
  const best = pool.sort((x, y) => y.rowsPerSecond - x.rowsPerSecond)[0]!;
  const tried = measured.map((m) => ({
    form: m.form,
    bytes: m.bytes.length,
    rowsPerSecond: Math.round(m.rowsPerSecond),
    withinTolerance: m.passed,
    outputs: m.outputs,
  }));
  return { bytes: best.bytes, details: { form: best.form, ...best.details, forms: tried } };
}

/** One form's figures on the measuring data, whether they are within the tolerance, and by how much (negative: outside). */
async function measureForm(ctx: RewriteCtx, f: Form) {
  const h = await scratchModel(f.bytes, ctx.cacheDir);
  const { comparison, childOut } = await compareOn(ctx.engine, ctx.measure, h);
  const outputs = comparison.figures();
  const accuracy = ctx.measure.evalRows ? accuracyOf(ctx.measure.evalRows, ctx.measure.parentOut[0]!, childOut[0]!) : undefined;
  const j = judge(outputs, ctx.tolerance, accuracy);
  const margin = j.worst ? (j.worst.measure === 'accuracyDrop' ? j.worst.bar - j.worst.value : j.worst.value - j.worst.bar) : 0;
  return { outputs, passed: j.passed, margin };
}

/** Accuracy before and after on a labelled dataset, when it has a target the outputs can be scored on. */
export function accuracyOf(rows: EvalRows, before: Record<string, RawTensor>, after: Record<string, RawTensor>) {
  const [b, a] = [score(before, rows), score(after, rows)];
  return b.accuracy !== undefined && a.accuracy !== undefined ? { before: b.accuracy, after: a.accuracy } : undefined;
}

/** Dynamic int8 with every op, and, when that turned Convs into ConvInteger, with Conv kept float. */
function dynamicForms(before: Uint8Array, perChannel: boolean): { forms: Form[]; errors: Error[] } {
  const forms: Form[] = [];
  const errors: Error[] = [];
  const build = (form: string, ops: readonly DynamicOp[]) => {
    try {
      const r = quantizeInt8(before, { perChannel, ops });
      forms.push({ form, bytes: r.bytes, details: { quantized: r.report.quantized, skipped: r.report.skipped } });
      return r.report;
    } catch (e) {
      if (!(e instanceof GraphEditError)) throw e;
      errors.push(e);
      return undefined;
    }
  };
  const all = build('dynamic', DYNAMIC_OPS);
  if (all?.quantized.some((q) => q.op === 'Conv'))
    build(
      'dynamic, Conv kept float',
      DYNAMIC_OPS.filter((o) => o !== 'Conv'),
    );
  return { forms, errors };
}

export async function quantizeDynamic(ctx: RewriteCtx, opts: { perChannel: boolean }): Promise<Rewritten> {
  const { forms, errors } = dynamicForms(ctx.before, opts.perChannel);
  if (!forms.length) throw errors[0]!;
  return fastest(ctx, forms);
}

export async function quantizeStaticBest(ctx: RewriteCtx, opts: { perChannel: boolean; calibration?: Tensor[][] }): Promise<Rewritten> {
  const { feeds, source } = calibrationFeeds(
    ctx.before,
    opts.calibration,
    ctx.rows,
    ctx.samples.spatial,
    ctx.measure.data === 'samples' ? ctx.measure.feeds : undefined,
  );
  const ranges = await observeActivations(ctx.engine, ctx.before, feeds, opts, ctx.cacheDir);
  const r = quantizeStatic(ctx.before, ranges, opts);
  const calibration = { source, runs: feeds.length, rows: feeds.reduce((n, f) => n + (Object.values(f)[0]?.dims[0] ?? 0), 0) };
  const staticForm: Form = { form: 'static QDQ', bytes: r.bytes, details: { quantized: r.report.quantized, skipped: r.report.skipped, opset: r.report.opset } };
  const best = await fastest(ctx, [staticForm, ...dynamicForms(ctx.before, opts.perChannel).forms]);
  return { bytes: best.bytes, details: { ...best.details, calibration } };
}

/** Ops whose range or precision float16 often cannot hold: kept in float32 by the second fp16 form. */
const FP16_SENSITIVE = [
  'Sigmoid',
  'Exp',
  'Log',
  'Pow',
  'Div',
  'Sqrt',
  'Reciprocal',
  'Softmax',
  'LogSoftmax',
  'ReduceSum',
  'ReduceMean',
  'ReduceProd',
  'ReduceL2',
  'BatchNormalization',
  'InstanceNormalization',
  'LayerNormalization',
  'Resize',
  'ConvTranspose',
];

/**
 * fp16 in order of quality: everything in float16, then range-sensitive ops kept in float32 with
 * the constants they read (onnxconverter-common's op block list, extended) and the front end (what
 * reads the inputs before the first weight op: raw values such as an income of 80,000 are Inf in
 * float16). The first form within the tolerance is kept; when none is, the verdict refuses the nearest.
 */
export async function fp16(ctx: RewriteCtx): Promise<Rewritten> {
  const specs: [string, string[], boolean][] = [
    ['fp16', [], false],
    ['fp16, range-sensitive ops in float32', FP16_SENSITIVE, true],
  ];
  const tried = [];
  let chosen: (Form & { passed: boolean; margin: number }) | undefined;
  for (const [form, blockOps, keepFrontEnd] of specs) {
    const r = toFloat16(ctx.before, { blockOps, keepFrontEnd });
    const f = { form, bytes: r.bytes, details: { convertedTensors: r.converted, keptFloat32: r.report.blocked, casts: r.report.casts } };
    const m = await measureForm(ctx, f);
    tried.push({ form, bytes: f.bytes.length, withinTolerance: m.passed, outputs: m.outputs });
    if (!chosen || m.margin > chosen.margin) chosen = { ...f, ...m };
    if (m.passed) {
      chosen = { ...f, ...m };
      break;
    }
  }
  return { bytes: chosen!.bytes, details: { form: chosen!.form, ...chosen!.details, forms: tried } };
}

/** Bisection steps of a targetAgreement search over the share of units kept. */
const PRUNE_STEPS = 6;

/** The agreement a pruning level is held to: the lowest top-1 over outputs with classes, else the lowest cosine. */
function agreementOf(outputs: OutputFigures[]): number {
  const top = outputs.flatMap((o) => (o.top1 !== undefined ? [o.top1] : []));
  return top.length ? Math.min(...top) : Math.min(...outputs.map((o) => o.cosine ?? 0));
}

export async function prune(ctx: RewriteCtx, options: Record<string, unknown>): Promise<Rewritten> {
  if (options.structured === false) {
    const r = pruneMagnitude(ctx.before, options.sparsity as number);
    return {
      bytes: r.bytes,
      details: {
        form: 'magnitude',
        paramsBefore: r.paramsBefore,
        paramsAfter: r.paramsAfter,
        layers: r.layers,
        note: 'magnitude pruning zeroes weights in place: the file keeps its size and speed',
      },
    };
  }
  const level = (keep: number) => {
    const r = pruneStructured(ctx.before, keep);
    return { bytes: r.bytes, details: { form: 'structured', keep, paramsBefore: r.paramsBefore, paramsAfter: r.paramsAfter, layers: r.layers } };
  };
  if (options.keep !== undefined || options.sparsity !== undefined) return level((options.keep as number | undefined) ?? 1 - (options.sparsity as number));
  return searchKeep(ctx, options.targetAgreement as number, level);
}

/** The smallest share kept whose agreement stays at or above the target, by bisection over (0, 1). */
async function searchKeep(ctx: RewriteCtx, target: number, level: (keep: number) => Rewritten & { details: { keep: number } }): Promise<Rewritten> {
  let [lo, hi] = [0, 1];
  let best: (Rewritten & { agreement: number }) | undefined;
  const tried: { keep: number; bytes: number; agreement: number }[] = [];
  for (let step = 0; step < PRUNE_STEPS; step++) {
    const keep = Math.round(((lo + hi) / 2) * 1000) / 1000;
    const candidate = level(keep);
    const { comparison } = await compareOn(ctx.engine, ctx.measure, await scratchModel(candidate.bytes, ctx.cacheDir));
    const agreement = agreementOf(comparison.figures());
    tried.push({ keep, bytes: candidate.bytes.length, agreement });
    if (agreement >= target) {
      best = { ...candidate, agreement };
      hi = keep;
    } else lo = keep;
  }
  if (!best) {
    const last = tried.at(-1)!;
    throw new GraphEditError(
      `no pruning level keeps agreement >= ${target} on the ${ctx.measure.rows} ${ctx.measure.data} rows (keeping ${last.keep} of the units: ${last.agreement.toFixed(4)})`,
    );
  }
  return { bytes: best.bytes, details: { ...best.details, targetAgreement: target, agreement: best.agreement, levels: tried } };
}

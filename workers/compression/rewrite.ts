// The graph rewrites of a compression job, one function per method. Quantization builds every form
// that applies (dynamic with ConvInteger, dynamic with Conv kept float, static QDQ), measures them
// on the engine and keeps the fastest that agrees with the parent: ConvInteger is often slower than
// float Conv on CPU, and QDQ is what makes convolutions fast.
import { GraphEditError } from '../onnx/graph.ts';
import { toFloat16 } from '../onnx/fp16.ts';
import { pruneMagnitude, pruneStructured } from '../onnx/prune/index.ts';
import { DYNAMIC_OPS, type DynamicOp, quantizeInt8 } from '../onnx/quantize/dynamic.ts';
import { quantizeStatic } from '../onnx/quantize/static.ts';
import type { Tensor } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { calibrationFeeds, observeActivations } from './calibrate.ts';
import type { EvalRows } from './dataset.ts';
import { agreement, BATCH, rowsPerSecond, type Samples, scratchModel } from './measure.ts';

export interface Rewritten {
  bytes: Uint8Array;
  details: Record<string, unknown>;
}

export interface RewriteCtx {
  engine: Engine;
  parent: ModelHandle;
  before: Uint8Array;
  samples: Samples & { spatial: number };
  rows?: EvalRows;
  cacheDir?: string;
}

interface Form {
  form: string;
  bytes: Uint8Array;
  details: Record<string, unknown>;
}

/** A candidate is acceptable when it agrees with the parent as the tests demand of int8. */
const agrees = (a: { cosine: number; argmaxAgreement: number }) => a.cosine >= 0.98 || a.argmaxAgreement >= 0.9;

/** Measures the forms and keeps the fastest acceptable one (the most faithful when none is). */
async function fastest(ctx: RewriteCtx, forms: Form[]): Promise<Rewritten> {
  if (forms.length === 1) return { bytes: forms[0]!.bytes, details: { form: forms[0]!.form, ...forms[0]!.details } };
  const measured = [];
  for (const f of forms) {
    const h = await scratchModel(f.bytes, ctx.cacheDir);
    const a = await agreement(ctx.engine, ctx.parent, h, ctx.samples.feeds);
    measured.push({ ...f, rowsPerSecond: await rowsPerSecond(ctx.engine, h, ctx.samples.feeds, BATCH), cosine: a.cosine, ok: agrees(a) });
  }
  const pool = measured.some((m) => m.ok) ? measured.filter((m) => m.ok) : [measured.sort((x, y) => y.cosine - x.cosine)[0]!];
  const best = pool.sort((x, y) => y.rowsPerSecond - x.rowsPerSecond)[0]!;
  const forms_ = measured.map((m) => ({ form: m.form, bytes: m.bytes.length, rowsPerSecond: Math.round(m.rowsPerSecond), cosine: m.cosine }));
  return { bytes: best.bytes, details: { form: best.form, ...best.details, forms: forms_ } };
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
  const { feeds, source } = calibrationFeeds(ctx.before, opts.calibration, ctx.rows, ctx.samples.spatial);
  const ranges = await observeActivations(ctx.engine, ctx.before, feeds, opts, ctx.cacheDir);
  const r = quantizeStatic(ctx.before, ranges, opts);
  const calibration = { source, runs: feeds.length, rows: feeds.reduce((n, f) => n + (Object.values(f)[0]?.dims[0] ?? 0), 0) };
  const staticForm: Form = { form: 'static QDQ', bytes: r.bytes, details: { quantized: r.report.quantized, skipped: r.report.skipped, opset: r.report.opset } };
  const best = await fastest(ctx, [staticForm, ...dynamicForms(ctx.before, opts.perChannel).forms]);
  return { bytes: best.bytes, details: { ...best.details, calibration } };
}

export function fp16(before: Uint8Array): Rewritten {
  const r = toFloat16(before);
  return { bytes: r.bytes, details: { convertedTensors: r.converted, keptFloat32: r.report.blocked, casts: r.report.casts } };
}

export function prune(before: Uint8Array, options: Record<string, unknown>): Rewritten {
  const r = options.structured === true ? pruneStructured(before, options.keep as number) : pruneMagnitude(before, options.sparsity as number);
  return { bytes: r.bytes, details: { paramsBefore: r.paramsBefore, paramsAfter: r.paramsAfter, layers: r.layers } };
}

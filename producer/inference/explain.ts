// Explained online requests: `parameters.explain: true` on an inference-protocol request. Such a
// request travels alone as an `explain` job on the infer queue (never coalesced: its perturbations are
// thousands of rows that the worker runs in large batches of their own) and its answer gets an
// `attributions` output and `parameters.explain_base`.
import crypto from 'node:crypto';
import { z } from 'zod';
import { AppError, badRequest, fromErrorData } from '../../core/errors.ts';
import { occlusionBytes, occlusionEvaluations } from '../../core/text-tokens.ts';
import {
  DEFAULT_EXPLAIN_SAMPLES,
  evaluationsPerRow,
  explainTarget,
  type ExplainTarget,
  MAX_EXPLAIN_SAMPLES,
  shapleyBytes,
  type ExplainColumn,
  type ExplainJob,
  type ExplainResult,
} from '../../core/jobs/explain.ts';
import { processedEvaluations, processedExplainPlan } from '../../core/processing/explain.ts';
import { toProtocolTensor, type InferRequest, type JobTensor } from '../../core/jobs/infer.ts';
import type { VersionRecord } from '../../core/registry.ts';
import { EXPLAIN_OUTPUT_NAMES, type BatchExplain } from '../../core/jobs/batch.ts';
import { JobAnswers } from './await-job.ts';
import type { ProducerDeps } from '../deps.ts';

export interface ExplainParams {
  samples: number;
  /** A model with image processing: the patch side (pixels of the model's input). */
  patch?: number;
  classIndex?: number;
  seed: number;
}

const int = (v: unknown, name: string, min: number, max: number): number => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw badRequest(`parameters.${name} must be an integer between ${min} and ${max}`);
  return v;
};

/** null: a plain request. Otherwise the explanation's settings, checked. */
export function explainParams(p: Record<string, unknown> | undefined): ExplainParams | null {
  if (!p || p.explain === undefined || p.explain === false) return null;
  if (p.explain !== true) throw badRequest('parameters.explain must be true or false');
  return {
    samples: p.explainSamples === undefined ? DEFAULT_EXPLAIN_SAMPLES : int(p.explainSamples, 'explainSamples', 2, MAX_EXPLAIN_SAMPLES),
    ...(p.explainClass !== undefined ? { classIndex: int(p.explainClass, 'explainClass', 0, 1_000_000) } : {}),
    seed: p.explainSeed === undefined ? 0 : int(p.explainSeed, 'explainSeed', 0, 2 ** 31 - 1),
    ...(p.explainPatch !== undefined ? { patch: int(p.explainPatch, 'explainPatch', 1, 65_536) } : {}),
  };
}

export type ExplainFn = (
  model: VersionRecord,
  request: InferRequest,
  params: ExplainParams,
  gpu: boolean,
) => Promise<{ outputs: object[]; parameters: ExplainAnswerParams; tensors: JobTensor[] }>;

/** The answer's explanation parameters (REST: `parameters`; gRPC: response parameters). */
export interface ExplainAnswerParams {
  explain_base: number[];
  explain_class: number[];
  explain_output: string;
  explain_method: 'shapley' | 'occlusion' | 'patches' | 'segments' | 'tokens';
  /** A model with image processing: the side in pixels of the patches occluded. */
  explain_patch?: number;
  /** Shapley only. */
  explain_samples?: number;
  /** A column-input model: the players, named as its columns, in the order of the attributions. */
  explain_columns?: string[];
}

export function createExplain(d: ProducerDeps): ExplainFn {
  const lanes = new Map<'infer' | 'infer-gpu', JobAnswers>();
  const answersOf = (q: 'infer' | 'infer-gpu') => {
    let a = lanes.get(q);
    if (!a) lanes.set(q, (a = new JobAnswers(d.queues.queue(q), d.queues.queueEvents(q))));
    return a;
  };
  const idPrefix = `x${crypto.randomBytes(5).toString('hex')}-`;
  let seq = 0;
  const timeoutMs = d.cfg.MODELQ_INFER_TIMEOUT_MS;

  /** Shapley settings for a features model (its background, the cost checked), or occlusion for a text model. */
  const methodOf = (
    model: VersionRecord,
    t: ExplainTarget,
    request: InferRequest,
    params: ExplainParams,
  ): Pick<ExplainJob, 'method' | 'background' | 'columns'> => {
    const limit = d.cfg.MODELQ_EXPLAIN_MAX_EVALS;
    const maxBytes = d.cfg.MODELQ_EXPLAIN_MAX_BYTES;
    if (t.text) {
      const data = request.inputs[0] && 'data' in request.inputs[0] ? request.inputs[0].data : [];
      const texts = (data as unknown[]).map(String);
      const evals = occlusionEvaluations(texts);
      if (evals > limit)
        throw badRequest(
          `explaining these texts by occlusion costs ${evals} model evaluations (one per row and per distinct word); the limit is ${limit} (MODELQ_EXPLAIN_MAX_EVALS)`,
        );
      const bytes = occlusionBytes(texts);
      if (bytes > maxBytes)
        throw badRequest(
          `explaining these texts by occlusion feeds the model ${bytes} bytes of text (each row once per distinct word); the limit is ${maxBytes} bytes (MODELQ_EXPLAIN_MAX_BYTES): send shorter texts or fewer rows`,
        );
      return { method: 'occlusion' };
    }
    if (t.columns) return columnsMethod(model, t.columns, request, params);
    const bg = model.explain?.background;
    if (!bg)
      throw badRequest(
        `model ${model.name} version ${model.version} has no background rows to explain against: PUT /v1/models/${model.name}/versions/${model.version}/background`,
      );
    const rows = request.inputs[0]!.shape[0]!;
    const features = request.inputs[0]!.shape[1]!;
    if (features !== bg.features) throw badRequest(`the request has ${features} features, the background ${bg.features}`);
    const evals = rows * evaluationsPerRow(params.samples + (params.samples % 2), bg.rows, features);
    if (evals > limit) {
      throw badRequest(
        `explaining ${rows} rows with ${params.samples} samples against ${bg.rows} background rows costs ${evals} model evaluations; the limit is ${limit} (MODELQ_EXPLAIN_MAX_EVALS): send fewer rows or samples`,
      );
    }
    const bytes = shapleyBytes(rows, params.samples + (params.samples % 2), bg.rows, features);
    if (bytes > maxBytes)
      throw badRequest(
        `explaining ${rows} rows with ${params.samples} samples against ${bg.rows} background rows feeds the model ${bytes} bytes of perturbed rows; the limit is ${maxBytes} bytes (MODELQ_EXPLAIN_MAX_BYTES): send fewer rows or samples`,
      );
    return { method: 'shapley', background: bg };
  };

  /** A column-input model: one player per column, against its background (training rows) or one row of missing values. */
  const columnsMethod = (
    model: VersionRecord,
    columns: ExplainColumn[],
    request: InferRequest,
    params: ExplainParams,
  ): Pick<ExplainJob, 'method' | 'background' | 'columns'> => {
    const bg = model.explain?.background;
    const B = bg?.rows ?? 1;
    const rows = request.inputs[0]?.shape[0] ?? 0;
    const samples = params.samples + (params.samples % 2);
    const evals = rows * evaluationsPerRow(samples, B, columns.length);
    const limit = d.cfg.MODELQ_EXPLAIN_MAX_EVALS;
    if (evals > limit)
      throw badRequest(
        `explaining ${rows} rows with ${params.samples} samples against ${B} background rows costs ${evals} model evaluations; the limit is ${limit} (MODELQ_EXPLAIN_MAX_EVALS): send fewer rows or samples`,
      );
    // A point's width: 4 bytes per number, the request's longest string per string column (background strings are training values).
    let width = 0;
    for (const c of columns) {
      const t = request.inputs.find((i) => i.name === c.name);
      const data = t && 'data' in t ? (t.data as unknown[]) : [];
      width += c.kind === 'number' ? 4 : 16 + 3 * data.reduce<number>((m, v) => Math.max(m, String(v).length), 0);
    }
    const bytes = shapleyBytes(rows, samples, B, columns.length, width);
    const maxBytes = d.cfg.MODELQ_EXPLAIN_MAX_BYTES;
    if (bytes > maxBytes)
      throw badRequest(
        `explaining ${rows} rows with ${params.samples} samples against ${B} background rows feeds the model ${bytes} bytes of perturbed rows; the limit is ${maxBytes} bytes (MODELQ_EXPLAIN_MAX_BYTES): send fewer rows or samples`,
      );
    return { method: 'shapley', ...(bg ? { background: bg } : {}), columns };
  };

  /** A model with declared processing: occlusion of the tensor its processing gives (core/processing/explain.ts), the cost checked. */
  const processedMethod = (model: VersionRecord, request: InferRequest, params: ExplainParams) => {
    const plan = processedExplainPlan(model, params.patch);
    const first = request.inputs[0];
    const rows = first && 'data' in first ? first.shape[0]! : 0;
    const evals = processedEvaluations(plan, rows);
    const limit = d.cfg.MODELQ_EXPLAIN_MAX_EVALS;
    if (evals > limit)
      throw badRequest(
        `explaining ${rows} rows by occlusion (${plan.method}: ${plan.regions} per row) costs up to ${evals} model evaluations; the limit is ${limit} (MODELQ_EXPLAIN_MAX_EVALS): send fewer rows${plan.patch ? ' or a larger explainPatch' : ''}`,
      );
    const bytes = rows * plan.regions * plan.rowBytes;
    if (bytes > d.cfg.MODELQ_EXPLAIN_MAX_BYTES)
      throw badRequest(
        `explaining ${rows} rows by occlusion feeds the model up to ${bytes} bytes; the limit is ${d.cfg.MODELQ_EXPLAIN_MAX_BYTES} bytes (MODELQ_EXPLAIN_MAX_BYTES): send fewer rows`,
      );
    return plan;
  };

  return async (model, request, params, gpu) => {
    const plan = model.processing ? processedMethod(model, request, params) : undefined;
    const t: ExplainTarget = plan ? { input: model.processing!.inputs[0]!.input, output: plan.output, features: 0 } : explainTarget(model);
    const how: Pick<ExplainJob, 'method' | 'background' | 'columns' | 'patch'> = plan
      ? { method: plan.method, ...(plan.patch !== undefined ? { patch: plan.patch } : {}) }
      : methodOf(model, t, request, params);
    const q = gpu ? 'infer-gpu' : 'infer';
    const data: ExplainJob = {
      model: { name: model.name, version: model.version, sha256: model.sha256, ...(model.processing ? { processing: model.processing } : {}) },
      request: { ...request, deadline: Date.now() + timeoutMs },
      input: t.input,
      output: t.output,
      ...how,
      samples: params.samples,
      seed: params.seed,
      runRows: d.cfg.MODELQ_EXPLAIN_RUN_ROWS,
      maxBytes: d.cfg.MODELQ_EXPLAIN_MAX_BYTES,
      ...(params.classIndex !== undefined ? { classIndex: params.classIndex } : {}),
    };
    const jobId = `${idPrefix}${++seq}`;
    const answers = answersOf(q);
    const answer = answers.wait<ExplainResult>(jobId, timeoutMs, 'explanation');
    d.queues
      .queue(q)
      .add('explain', data, { jobId })
      .catch((e: Error) => answers.cancel(jobId, e));
    const r = await answer;
    if (!r.ok) throw fromErrorData(r.error);
    if (!r.outputs.some((o) => o.name === 'attributions')) throw new AppError('internal', 'the worker answered without attributions');
    return {
      tensors: r.outputs,
      outputs: r.outputs.map(toProtocolTensor),
      parameters: {
        explain_base: r.base,
        explain_class: r.classes,
        explain_output: t.output,
        explain_method: how.method!,
        ...(t.columns ? { explain_columns: t.columns.map((c) => c.name) } : {}),
        ...(how.method === 'shapley' ? { explain_samples: params.samples + (params.samples % 2) } : {}),
        ...(how.patch !== undefined ? { explain_patch: how.patch } : {}),
      },
    };
  };
}

/** Query parameters of an explained batch (strings, as a query string carries them). */
export const batchExplainParams = {
  explain: z
    .enum(['true', 'false'])
    .optional()
    .meta({ description: 'true: every output line gets attributions (a features model needs a background; a text model gets its words by occlusion)' }),
  explainSamples: z.coerce
    .number()
    .int()
    .min(2)
    .max(MAX_EXPLAIN_SAMPLES)
    .optional()
    .meta({ description: `Permutations per row (default ${DEFAULT_EXPLAIN_SAMPLES}, rounded up to even)` }),
  explainClass: z.coerce.number().int().min(0).max(1_000_000).optional().meta({ description: "Class attributed (default each row's highest-scoring)" }),
  explainSeed: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .optional()
    .meta({ description: 'Seed of the permutations (default 0)' }),
};

/** One explained row's cost against MODELQ_EXPLAIN_MAX_EVALS. */
function checkCost(per: number, maxEvals: number): void {
  if (per > maxEvals)
    throw badRequest(`one explained row costs ${per} model evaluations; the limit is ${maxEvals} (MODELQ_EXPLAIN_MAX_EVALS): use fewer samples`);
}

/** The explain settings of a batch, checked at submit (the model must be explainable: a text model, or one with a background), or undefined. */
export function batchExplain(
  model: VersionRecord,
  q: { explain?: 'true' | 'false'; explainSamples?: number; explainClass?: number; explainSeed?: number },
  maxEvals: number,
): BatchExplain | undefined {
  if (q.explain !== 'true') return undefined;
  const t = explainTarget(model);
  const clash = model.outputs.find((o) => (EXPLAIN_OUTPUT_NAMES as readonly string[]).includes(o.name));
  if (clash) throw badRequest(`model ${model.name} has an output named "${clash.name}", which explained batch lines use for the explanation`);
  const classes = model.outputs.find((o) => o.name === t.output)?.shape[1];
  if (q.explainClass !== undefined && classes !== undefined && classes > 0 && q.explainClass >= classes) {
    throw badRequest(`explainClass ${q.explainClass} is out of range: output "${t.output}" has ${classes} columns`);
  }
  // Text models: occlusion of each distinct word (no background, nothing sampled).
  if (t.text)
    return {
      method: 'occlusion',
      input: t.input,
      output: t.output,
      features: 1,
      samples: 2,
      seed: 0,
      ...(q.explainClass !== undefined ? { classIndex: q.explainClass } : {}),
    };
  const samples = q.explainSamples ?? DEFAULT_EXPLAIN_SAMPLES;
  if (t.columns) {
    const cbg = model.explain?.background;
    checkCost(evaluationsPerRow(samples + (samples % 2), cbg?.rows ?? 1, t.features), maxEvals);
    return {
      method: 'shapley',
      input: t.input,
      output: t.output,
      features: t.features,
      ...(cbg ? { background: cbg } : {}),
      columns: t.columns,
      samples,
      seed: q.explainSeed ?? 0,
      ...(q.explainClass !== undefined ? { classIndex: q.explainClass } : {}),
    };
  }
  const bg = model.explain?.background;
  if (!bg)
    throw badRequest(
      `model ${model.name} version ${model.version} has no background rows to explain against: PUT /v1/models/${model.name}/versions/${model.version}/background`,
    );
  if (bg.features !== t.features) throw badRequest(`the model has ${t.features} features, its background ${bg.features}`);
  checkCost(evaluationsPerRow(samples + (samples % 2), bg.rows, t.features), maxEvals);
  return {
    method: 'shapley',
    input: t.input,
    output: t.output,
    features: t.features,
    background: bg,
    samples,
    seed: q.explainSeed ?? 0,
    ...(q.explainClass !== undefined ? { classIndex: q.explainClass } : {}),
  };
}

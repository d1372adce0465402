// Processor for `explain` jobs (infer queue): the model's outputs for the request, plus Shapley
// attributions of one output's class column per row, computed with the worker's engine in a few
// large runs of perturbed rows (never through the dynamic batcher, whose merged runs it would swamp).
import type { Config } from '../../core/config.ts';
import { AppError, errorData } from '../../core/errors.ts';
import { explainJobSchema, shapleyBytes, type ExplainColumn, type ExplainJob, type ExplainResult } from '../../core/jobs/explain.ts';
import { isPacked, packRaw, unpackRaw, type JobTensor } from '../../core/jobs/infer.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { fromRaw, toRaw, type RawTensor } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { loadFirst, type InferJobLike } from '../inference/infer.ts';
import { localModelPath } from '../model-cache.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { loadBackground, loadColumnBackground } from './background.ts';
import { shapleyColumns, type ColumnValues } from './column-shapley.ts';
import { shapley, type Evaluate } from './shapley.ts';
import { occlusion } from './occlusion.ts';
import { explainProcessed } from './processed.ts';

export interface ExplainDeps {
  /** `isWarm` and `warm`: a model not loaded yet is loaded first, that time not counted against the request (infer.ts). */
  engine: Pick<Engine, 'run'> & Partial<Pick<Engine, 'threadCount' | 'isWarm' | 'warm'>>;
  store: ArtifactStore;
  cacheDir?: string;
  /** MODELQ_MAX_IMAGE_PIXELS, for the files of a model with declared processing. */
  cfg?: Partial<Pick<Config, 'MODELQ_MAX_IMAGE_PIXELS'>>;
}

export async function explainProcessor(job: InferJobLike, deps: ExplainDeps): Promise<ExplainResult> {
  const data = parseJobData(explainJobSchema, job.data, 'explain');
  if (data.request.deadline !== undefined && Date.now() > data.request.deadline) {
    return { ok: false, error: errorData(new AppError('timeout', 'the client stopped waiting before the request started')) };
  }
  try {
    const path = await localModelPath(deps.store, data.model.sha256, deps.cacheDir);
    const model: ModelHandle = { sha256: data.model.sha256, path, label: `${data.model.name}@${data.model.version}` };
    const engine = deps.engine;
    if (engine.isWarm && engine.warm && !engine.isWarm(model.sha256)) await loadFirst(job, engine as Pick<Engine, 'warm'>, model, [data.request]);
    return await explain(data, model, { ...deps, engine: untilDeadline(engine, data.request.deadline) });
  } catch (e) {
    if (e instanceof AppError && !e.retryable) return { ok: false, error: errorData(e) };
    throw toJobError(e);
  }
}

/**
 * The engine as an explanation sees it: no run starts once the client has stopped waiting
 * (MODELQ_INFER_TIMEOUT_MS), so an expensive explanation is bounded by its request's time as well
 * as its cost; each run has the engine's own budget (MODELQ_ENGINE_RUN_TIMEOUT_MS).
 */
function untilDeadline(engine: ExplainDeps['engine'], deadline: number | undefined): ExplainDeps['engine'] {
  if (deadline === undefined) return engine;
  return {
    // The engine is a class: its getters and methods do not spread.
    ...(engine.threadCount !== undefined ? { threadCount: engine.threadCount } : {}),
    run: (model, feeds, opts) => {
      if (Date.now() > deadline)
        return Promise.reject(new AppError('timeout', 'the explanation outlived its request (MODELQ_INFER_TIMEOUT_MS) and was stopped'));
      return engine.run(model, feeds, opts);
    },
  };
}

async function explain(data: ExplainJob, model: ModelHandle, deps: ExplainDeps): Promise<ExplainResult> {
  if (data.model.processing) return explainProcessed(data, model, { ...deps, maxPixels: deps.cfg?.MODELQ_MAX_IMAGE_PIXELS });
  if (data.columns) return explainColumns(data, data.columns, model, deps);
  const input = data.request.inputs.find((t) => t.name === data.input);
  if (!input || data.request.inputs.length !== 1) throw new AppError('bad_request', `explanation needs exactly the one input "${data.input}"`);
  const raw = feed(input);
  if (data.method === 'occlusion') return explainText(data, model, deps, raw);
  if (!data.background) throw new AppError('bad_request', 'a Shapley explanation needs background rows');
  if (raw.type !== 'float32' || raw.dims.length !== 2) throw new AppError('bad_request', `input "${data.input}" must be FP32 [rows, features] to be explained`);
  const [rows, features] = raw.dims as [number, number];
  const x = raw.data as Float32Array;
  const bg = await loadBackground(deps.store, data.background.key);
  if (bg.features !== features) throw new AppError('bad_request', `the background has ${bg.features} features, the request ${features}`);
  checkShapleyBytes(rows, data, bg.x.length / features, features);

  // The plain answer first (the outputs the client asked for); f(x) for the attribution comes from its own evaluation.
  const plain = await deps.engine.run(model, { [data.input]: { type: 'float32', dims: [rows, features], data: x.slice() } }, { rows });
  const evaluate: Evaluate = async (batch, n) => {
    const out = await deps.engine.run(model, { [data.input]: { type: 'float32', dims: [n, features], data: batch } }, { outputs: [data.output], rows: n });
    const t = out[data.output];
    if (!t || t.type !== 'float32') throw new AppError('bad_request', `output "${data.output}" is not FP32`);
    return { scores: t.data as Float32Array, classes: t.dims.length > 1 ? t.dims.slice(1).reduce((a, b) => a * b, 1) : 1 };
  };
  let r;
  try {
    r = await shapley(
      {
        x,
        rows,
        features,
        background: bg.x,
        samples: data.samples,
        seed: data.seed,
        classIndex: data.classIndex,
        runRows: data.runRows,
        // One run per engine thread at a time: a request's perturbations use every core, not one.
        parallel: deps.engine.threadCount ?? 1,
      },
      evaluate,
    );
  } catch (e) {
    if (e instanceof RangeError) throw new AppError('bad_request', e.message);
    throw e;
  }
  const outputs = withAttributions(plain, data.request.outputs, r.attributions, rows, features);
  return { ok: true, outputs, base: r.base, classes: r.classes };
}

/** A column-input model: one Shapley player per input column, against the background rows (or one row of missing values). */
async function explainColumns(data: ExplainJob, columns: ExplainColumn[], model: ModelHandle, deps: ExplainDeps): Promise<ExplainResult> {
  const feeds: Record<string, RawTensor> = {};
  const x: ColumnValues[] = [];
  let rows = -1;
  for (const c of columns) {
    const t = data.request.inputs.find((i) => i.name === c.name);
    if (!t) throw new AppError('bad_request', `explanation needs input "${c.name}"`);
    const raw = feed(t);
    const n = raw.dims[0] ?? 0;
    if (rows >= 0 && n !== rows) throw new AppError('bad_request', `input "${c.name}" has ${n} rows, the others ${rows}`);
    rows = n;
    if (c.kind === 'number') {
      if (raw.type !== 'float32') throw new AppError('bad_request', `input "${c.name}" must be FP32 to be explained`);
      x.push(raw.data as Float32Array);
    } else {
      if (raw.type !== 'string' || !Array.isArray(raw.data)) throw new AppError('bad_request', `input "${c.name}" must be BYTES to be explained`);
      x.push(raw.data.map(String));
    }
    // The engine takes float buffers over (transfers them): the plain run gets copies, x keeps its own.
    feeds[c.name] = raw.type === 'float32' ? { ...raw, data: (raw.data as Float32Array).slice() } : raw;
  }
  const bg = await loadColumnBackground(deps.store, data.background?.key, columns);
  let widest = 0;
  x.forEach((v, f) => (widest += columns[f]!.kind === 'number' ? 4 : 16 + 3 * (v as string[]).reduce((m, s) => Math.max(m, s.length), 0)));
  checkShapleyBytes(rows, data, bg[0]!.length, columns.length, widest);
  const plain = await deps.engine.run(model, feeds, { rows });
  let r;
  try {
    r = await shapleyColumns(
      {
        columns,
        x,
        rows,
        background: bg,
        samples: data.samples,
        seed: data.seed,
        classIndex: data.classIndex,
        runRows: data.runRows,
        parallel: deps.engine.threadCount ?? 1,
      },
      async (f, n) => {
        const out = await deps.engine.run(model, f, { outputs: [data.output], rows: n });
        const t = out[data.output];
        if (!t || t.type !== 'float32') throw new AppError('bad_request', `output "${data.output}" is not FP32`);
        return { scores: t.data as Float32Array, classes: t.dims.length > 1 ? t.dims.slice(1).reduce((a, b) => a * b, 1) : 1 };
      },
    );
  } catch (e) {
    if (e instanceof RangeError) throw new AppError('bad_request', e.message);
    throw e;
  }
  const outputs = withAttributions(plain, data.request.outputs, r.attributions, rows, columns.length);
  return { ok: true, outputs, base: r.base, classes: r.classes };
}

/** A text model: every word of each row removed in turn (occlusion.ts); tokens and attributions padded to the row with most words. */
async function explainText(data: ExplainJob, model: ModelHandle, deps: ExplainDeps, raw: RawTensor): Promise<ExplainResult> {
  if (raw.type !== 'string' || !Array.isArray(raw.data))
    throw new AppError('bad_request', `input "${data.input}" must be BYTES (text) to be explained by occlusion`);
  const texts = raw.data.map(String);
  const rows = texts.length;
  const shapeOf = (n: number) => (raw.dims.length === 2 ? [n, 1] : [n]);
  const plain = await deps.engine.run(model, { [data.input]: { type: 'string', dims: shapeOf(rows), data: texts } }, { rows });
  let r;
  try {
    r = await occlusion(
      texts,
      async (batch) => {
        const out = await deps.engine.run(
          model,
          { [data.input]: { type: 'string', dims: shapeOf(batch.length), data: batch } },
          { outputs: [data.output], rows: batch.length },
        );
        const t = out[data.output];
        if (!t || t.type !== 'float32') throw new AppError('bad_request', `output "${data.output}" is not FP32`);
        return { scores: t.data as Float32Array, classes: t.dims.length > 1 ? t.dims.slice(1).reduce((a, b) => a * b, 1) : 1 };
      },
      {
        ...(data.classIndex !== undefined ? { classIndex: data.classIndex } : {}),
        runRows: data.runRows,
        ...(data.maxBytes !== undefined ? { maxBytes: data.maxBytes } : {}),
      },
    );
  } catch (e) {
    if (e instanceof RangeError) throw new AppError('bad_request', e.message);
    throw e;
  }
  const width = Math.max(0, ...r.map((x) => x.tokens.length));
  const tokens: string[] = [];
  const attributions = new Float32Array(rows * width);
  r.forEach((x, n) => {
    for (let k = 0; k < width; k++) tokens.push(x.tokens[k] ?? '');
    attributions.set(x.attributions, n * width);
  });
  const wanted = data.request.outputs ? new Set(data.request.outputs) : null;
  const outputs: JobTensor[] = [];
  for (const [name, t] of Object.entries(plain)) if (!wanted || wanted.has(name)) outputs.push(packRaw(name, t) ?? fromRaw(name, t));
  outputs.push(fromRaw('explain_tokens', { type: 'string', dims: [rows, width], data: tokens }));
  outputs.push(packRaw('attributions', { type: 'float32', dims: [rows, width], data: attributions })!);
  return { ok: true, outputs, base: r.map((x) => x.base), classes: r.map((x) => x.class) };
}

/** The producer checked the cost; a job that reached the worker otherwise (or with other limits) is checked again. */
export function checkShapleyBytes(rows: number, data: Pick<ExplainJob, 'samples' | 'maxBytes'>, backgroundRows: number, players: number, width = 4 * players) {
  if (data.maxBytes === undefined) return;
  const bytes = shapleyBytes(rows, data.samples + (data.samples % 2), backgroundRows, players, width);
  if (bytes > data.maxBytes)
    throw new AppError(
      'bad_request',
      `explaining ${rows} rows with ${data.samples} samples against ${backgroundRows} background rows feeds the model ${bytes} bytes of perturbed rows; the limit is ${data.maxBytes} bytes (MODELQ_EXPLAIN_MAX_BYTES)`,
    );
}

function feed(t: JobTensor): RawTensor {
  if (!isPacked(t)) return toRaw(t);
  const raw = unpackRaw(t);
  if (!raw) throw new AppError('bad_request', `input "${t.name}": the packed bytes do not match shape [${t.shape.join(',')}] of ${t.datatype}`);
  return raw;
}

/** The outputs the request asked for (all by default), then the attributions as [rows, players]. */
function withAttributions(
  plain: Record<string, RawTensor>,
  asked: string[] | undefined,
  attributions: Float32Array,
  rows: number,
  players: number,
): JobTensor[] {
  const wanted = asked ? new Set(asked) : null;
  const outputs: JobTensor[] = [];
  for (const [name, t] of Object.entries(plain)) if (!wanted || wanted.has(name)) outputs.push(packRaw(name, t) ?? fromRaw(name, t));
  outputs.push(packRaw('attributions', { type: 'float32', dims: [rows, players], data: attributions })!);
  return outputs;
}

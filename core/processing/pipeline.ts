// Pipelines: a registered model whose version is a small graph of steps, each a registered model
// version (by number or alias, resolved to a number when the pipeline is registered), with how the
// pipeline's inputs and the steps' outputs feed the steps' inputs, and which step outputs the
// pipeline answers. A step may run once per box of an earlier step's boxes, on the crop of an input
// image (detect, then classify each detection). The graph is checked when registered (every name
// known, no cycle, the datatype and shape of what feeds an input are what the input takes) and the
// resolved form is stored in the version record; the workers run it (workers/processing/pipeline.ts).
import { z } from 'zod';
import { badRequest } from '../errors.ts';
import { DATATYPES, type TensorSpec } from '../tensors.ts';
import { POST_OUTPUTS, processingSchema, textFeeds, type Processing } from './spec.ts';

const STEP_RE = /^[a-z][a-z0-9_-]{0,63}$/;
const IO_RE = /^[A-Za-z_][A-Za-z0-9_:/-]{0,127}$/;
/** A value: a pipeline input's name, or "<step>.<output>". */
const ref = z.string().min(1).max(300);

export const pipelineInputSchema = z
  .object({
    name: z.string().regex(IO_RE, 'an input name is letters, digits, _ : / -, starting with a letter or _'),
    datatype: z.enum(DATATYPES),
    /** -1 for a dynamic dimension; the first is the rows'. Files: BYTES [-1]. */
    shape: z.array(z.number().int().min(-1)).min(1).max(8),
  })
  .strict();

export const forEachSchema = z
  .object({
    /** "<step>.<output>": FP32 [n, k, 4] boxes, x1 y1 x2 y2. */
    boxes: ref,
    /** The pipeline input (files) whose images are cropped. */
    image: ref,
    /** The step model's image input that takes each crop; default its only input. */
    input: z.string().min(1).max(256).optional(),
    /** Box coordinates as fractions of the image's width and height, or as pixels of the decoded (upright) image. */
    units: z.enum(['normalized', 'pixels']).default('normalized'),
  })
  .strict();

export const pipelineStepSchema = z
  .object({
    name: z.string().regex(STEP_RE, 'a step name is [a-z][a-z0-9_-]{0,63}'),
    model: z.string().min(1).max(64),
    version: z.number().int().min(1).optional(),
    alias: z.string().min(1).max(64).optional(),
    /** The step model's input -> what feeds it: a pipeline input's name, or "<step>.<output>". */
    inputs: z.record(z.string().max(256), ref).default({}),
    /** Run the step once per box, on the crop of the image. */
    forEach: forEachSchema.optional(),
  })
  .strict();

export const pipelineSpecSchema = z
  .object({
    inputs: z.array(pipelineInputSchema).min(1).max(8),
    steps: z.array(pipelineStepSchema).min(1).max(16),
    /** The pipeline's output name -> "<step>.<output>". */
    outputs: z.record(z.string().regex(IO_RE), ref).refine((o) => Object.keys(o).length > 0, 'give at least one output'),
  })
  .strict();
export type PipelineSpec = z.output<typeof pipelineSpecSchema>;
export type PipelineStepSpec = z.output<typeof pipelineStepSchema>;

/** A step as registered: its model version resolved, with what the workers need to run it. */
export const resolvedStepSchema = pipelineStepSchema.extend({
  version: z.number().int().min(1),
  sha256: z.string(),
  modelInputs: z.array(z.object({ name: z.string(), datatype: z.enum(DATATYPES), shape: z.array(z.number().int()) })),
  modelOutputs: z.array(z.object({ name: z.string(), datatype: z.enum(DATATYPES), shape: z.array(z.number().int()) })),
  processing: processingSchema.optional(),
});
export type ResolvedStep = z.output<typeof resolvedStepSchema>;

/** What a pipeline version's record stores: its steps in an order that runs every step after what feeds it. */
export const pipelineSchema = z.object({
  inputs: z.array(pipelineInputSchema),
  steps: z.array(resolvedStepSchema),
  outputs: z.record(z.string(), z.string()),
});
export type Pipeline = z.output<typeof pipelineSchema>;

/** A version as pipelines see it: a registry record's fields. */
export interface StepModel {
  name: string;
  version: number;
  sha256: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  processing?: Processing | undefined;
  pipeline?: unknown;
}

/** Whether the spec is files: a BYTES [-1] input of a pipeline is a file per row. */
export const isFileSpec = (s: { datatype: string; shape: number[] }) => s.datatype === 'BYTES' && s.shape.length === 1;

/** The inputs that take files, of a model with processing or of a pipeline of files; undefined when it takes tensors. */
export function fileInputs(m: { processing?: Processing | undefined; pipeline?: Pipeline | undefined }): string[] | undefined {
  if (m.processing) return m.processing.inputs.map((s) => s.input);
  if (m.pipeline && m.pipeline.inputs.every(isFileSpec)) return m.pipeline.inputs.map((i) => i.name);
  return undefined;
}

/** The pipeline inputs that feed a step's text processing: texts (strings), not files. */
export function pipelineTextInputs(p: Pick<Pipeline, 'steps'>): Set<string> {
  const out = new Set<string>();
  for (const s of p.steps) for (const t of s.processing?.inputs ?? []) if (t.type === 'text' && s.inputs[t.input] !== undefined) out.add(s.inputs[t.input]!);
  return out;
}

/** A value reference: a pipeline input, or a step's output. */
export function parseRef(r: string, inputs: string[]): { input: string } | { step: string; output: string } {
  if (inputs.includes(r)) return { input: r };
  const dot = r.indexOf('.');
  if (dot <= 0) return { input: r };
  return { step: r.slice(0, dot), output: r.slice(dot + 1) };
}

/** The outputs a model version answers: its own, and those its post-processing adds. */
export function stepOutputs(m: Pick<StepModel, 'outputs' | 'processing'>): TensorSpec[] {
  const post = m.processing?.post;
  if (!post) return m.outputs;
  const o = m.outputs.find((x) => x.name === post.output);
  const classes = o?.shape[1] ?? -1;
  const added: TensorSpec[] = [];
  if (post.softmax) added.push({ name: 'probabilities', datatype: 'FP32', shape: [-1, classes] });
  if (post.argmax) added.push({ name: 'label', datatype: 'BYTES', shape: [-1] });
  if (post.topK !== undefined) {
    added.push({ name: 'top_k_labels', datatype: 'BYTES', shape: [-1, post.topK] });
    added.push({ name: 'top_k_scores', datatype: 'FP32', shape: [-1, post.topK] });
  }
  return [...m.outputs, ...added.filter((a) => (POST_OUTPUTS as readonly string[]).includes(a.name))];
}

const show = (s: { datatype: string; shape: number[] }) => `${s.datatype} [${s.shape.join(',')}]`;

/** Whether a value of spec `have` can feed an input of spec `want`: the datatype, the rank, and each fixed dimension. */
export function fits(have: { datatype: string; shape: number[] }, want: { datatype: string; shape: number[] }): boolean {
  if (have.datatype !== want.datatype || have.shape.length !== want.shape.length) return false;
  return have.shape.every((d, i) => d < 0 || want.shape[i]! < 0 || d === want.shape[i]);
}

/**
 * Checks a pipeline against the versions its steps name (`resolve` gives each step's version, or
 * throws a 400 naming it) and returns its stored form, with its inputs and outputs as a version's.
 */
export async function resolvePipeline(
  spec: PipelineSpec,
  resolve: (step: PipelineStepSpec, at: string) => Promise<StepModel>,
): Promise<{ pipeline: Pipeline; inputs: TensorSpec[]; outputs: TensorSpec[] }> {
  const inputNames = spec.inputs.map((i) => i.name);
  if (new Set(inputNames).size !== inputNames.length) throw badRequest('pipeline.inputs: an input name is given twice');
  const files = spec.inputs.filter(isFileSpec).length;
  if (files && files !== spec.inputs.length)
    throw badRequest('pipeline.inputs: a pipeline takes files (BYTES [-1]) for every input or for none; mixed inputs are not supported');
  for (const [i, inp] of spec.inputs.entries()) {
    if (inp.shape[0] !== -1) throw badRequest(`pipeline.inputs[${i}] "${inp.name}": the first dimension is the rows', give -1`);
    if (!isFileSpec(inp) && inp.shape.slice(1).some((d) => d < 0))
      throw badRequest(`pipeline.inputs[${i}] "${inp.name}": only the first dimension may be dynamic`);
  }
  const names = spec.steps.map((s) => s.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup) throw badRequest(`pipeline.steps: step name "${dup}" is given twice`);

  // Which steps each step reads, checked for names before any model is looked up.
  const deps = new Map<string, Set<string>>();
  const refTo = (r: string, at: string) => {
    const p = parseRef(r, inputNames);
    if ('input' in p) {
      if (!inputNames.includes(p.input))
        throw badRequest(`${at}: "${r}" is neither a pipeline input (${inputNames.map((n) => `"${n}"`).join(', ')}) nor "<step>.<output>"`);
      return p;
    }
    if (!names.includes(p.step)) throw badRequest(`${at}: "${r}" names an unknown step "${p.step}"`);
    return p;
  };
  for (const [i, s] of spec.steps.entries()) {
    const at = `pipeline.steps[${i}] "${s.name}"`;
    if (s.version !== undefined && s.alias !== undefined) throw badRequest(`${at}: give version or alias, not both`);
    const d = new Set<string>();
    for (const [k, r] of Object.entries(s.inputs)) {
      const p = refTo(r, `${at}.inputs.${k}`);
      if ('step' in p) d.add(p.step);
    }
    if (s.forEach) {
      const b = refTo(s.forEach.boxes, `${at}.forEach.boxes`);
      if (!('step' in b)) throw badRequest(`${at}.forEach.boxes "${s.forEach.boxes}" must be a step's output, "<step>.<output>"`);
      d.add(b.step);
      const img = refTo(s.forEach.image, `${at}.forEach.image`);
      if (!('input' in img) || !files) throw badRequest(`${at}.forEach.image "${s.forEach.image}" must be a pipeline input of files (BYTES [-1])`);
    }
    deps.set(s.name, d);
  }
  const outs = Object.entries(spec.outputs);
  for (const [k, r] of outs) {
    const p = refTo(r, `pipeline.outputs.${k}`);
    if (!('step' in p)) throw badRequest(`pipeline.outputs.${k}: "${r}" must be a step's output, "<step>.<output>"`);
  }

  // Steps ordered so that each runs after the steps it reads; a cycle is refused, naming it.
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (n: string, path: string[]) => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(n)), n];
      throw badRequest(`pipeline.steps form a cycle: ${cycle.join(' -> ')}`);
    }
    state.set(n, 'visiting');
    for (const d of deps.get(n)!) visit(d, [...path, n]);
    state.set(n, 'done');
    order.push(n);
  };
  for (const n of names) visit(n, []);

  // Each step's model, and the specs of the values it makes.
  const values = new Map<string, TensorSpec>(spec.inputs.map((i) => [i.name, i]));
  const resolved: ResolvedStep[] = [];
  for (const n of order) {
    const i = names.indexOf(n);
    const s = spec.steps[i]!;
    const at = `pipeline.steps[${i}] "${s.name}"`;
    const m = await resolve(s, at);
    const label = `${at} (model ${m.name}@${m.version})`;
    if (m.pipeline) throw badRequest(`${label} is a pipeline: a step must be a model, not a pipeline`);
    const procInputs = new Set(m.processing?.inputs.map((p) => p.input) ?? []);
    // The crop input of a forEach step.
    let cropInput: string | undefined;
    if (s.forEach) {
      const images = m.processing?.inputs.filter((p) => p.type === 'image').map((p) => p.input) ?? [];
      if (!images.length) throw badRequest(`${label}.forEach: the model has no declared image processing to take the crops`);
      cropInput = s.forEach.input ?? (m.inputs.length === 1 ? images[0] : undefined);
      if (!cropInput || !images.includes(cropInput))
        throw badRequest(`${label}.forEach.input must name the model's image input (${images.map((x) => `"${x}"`).join(', ')})`);
      if (m.inputs.length !== 1) throw badRequest(`${label}.forEach: a step run per box takes one input, the crop; the model has ${m.inputs.length}`);
      const boxes = values.get(s.forEach.boxes);
      if (!boxes) throw badRequest(`${at}.forEach.boxes "${s.forEach.boxes}" is not an output of that step`);
      if (boxes.datatype !== 'FP32' || boxes.shape.length !== 3 || (boxes.shape[2]! >= 0 && boxes.shape[2] !== 4))
        throw badRequest(`${at}.forEach.boxes "${s.forEach.boxes}" is ${show(boxes)}; boxes are FP32 [n, k, 4] (x1, y1, x2, y2)`);
    }
    // A text step's field (its texts) is mapped by that name; the model inputs the step feeds are not.
    const texts = (m.processing?.inputs ?? []).filter((x) => x.type === 'text');
    const textFed = new Set(texts.flatMap((x) => textFeeds(x)));
    for (const t of texts) {
      const r = s.inputs[t.input];
      if (r === undefined) throw badRequest(`${label}: text "${t.input}" is fed by nothing; map it in inputs`);
      const have = values.get(r);
      if (!inputNames.includes(r) || !have || !isFileSpec(have))
        throw badRequest(`${label}.inputs.${t.input}: texts come only from the pipeline's inputs of BYTES [-1]`);
    }
    for (const k of Object.keys(s.inputs)) {
      if (texts.some((t) => t.input === k)) continue;
      if (!m.inputs.some((x) => x.name === k))
        throw badRequest(`${label}.inputs: "${k}" is not an input of the model (${m.inputs.map((x) => `"${x.name}"`).join(', ')})`);
      if (k === cropInput) throw badRequest(`${label}.inputs: "${k}" takes the crops of forEach; do not map it`);
    }
    for (const inp of m.inputs) {
      if (inp.name === cropInput || textFed.has(inp.name)) continue;
      const r = s.inputs[inp.name];
      if (r === undefined) throw badRequest(`${label}: input "${inp.name}" is fed by nothing; map it in inputs`);
      const have = values.get(r);
      if (!have) throw badRequest(`${label}.inputs.${inp.name}: "${r}" is not an output of that step`);
      const want: TensorSpec = procInputs.has(inp.name) ? { name: inp.name, datatype: 'BYTES', shape: [-1] } : inp;
      if (!fits(have, want))
        throw badRequest(
          `${label}.inputs.${inp.name}: "${r}" is ${show(have)}; the input takes ${procInputs.has(inp.name) ? 'files, BYTES [-1]' : show(want)}`,
        );
      if (procInputs.has(inp.name) && !inputNames.includes(r)) throw badRequest(`${label}.inputs.${inp.name}: files come only from the pipeline's inputs`);
    }
    const k = s.forEach ? values.get(s.forEach.boxes)!.shape[1]! : 0;
    for (const o of stepOutputs(m)) {
      const shape = s.forEach ? [o.shape[0]!, k, ...o.shape.slice(1)] : o.shape;
      values.set(`${s.name}.${o.name}`, { name: `${s.name}.${o.name}`, datatype: o.datatype, shape });
    }
    resolved.push({
      ...s,
      version: m.version,
      sha256: m.sha256,
      modelInputs: m.inputs,
      modelOutputs: m.outputs,
      ...(m.processing ? { processing: m.processing } : {}),
    });
  }
  const outputs: TensorSpec[] = outs.map(([k, r]) => {
    const v = values.get(r);
    if (!v) throw badRequest(`pipeline.outputs.${k}: "${r}" is not an output of that step`);
    return { name: k, datatype: v.datatype, shape: v.shape };
  });
  return { pipeline: { inputs: spec.inputs, steps: resolved, outputs: spec.outputs }, inputs: spec.inputs, outputs };
}

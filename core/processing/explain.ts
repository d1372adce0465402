// Explanations of a model with declared processing, by occlusion of the tensor its processing gives
// (never of the file): an image step's input in square patches (set to the processing's value of a
// mid-grey pixel), an audio step's samples (silence) or log-mel frames (the log-mel of silence) in
// 16 runs along time, a text step's tokens one at a time (removed, the row padded again). One
// attribution per region: f(x) - f(x with the region occluded) of the attributed class. The
// producer checks the cost with these numbers, the worker (workers/explain/processed.ts) runs it.
import { badRequest } from '../errors.ts';
import type { TensorSpec } from '../tensors.ts';
import { melFrames, outputSize, type Processing, type Step } from './spec.ts';

/** Runs along time an audio input is occluded in. */
export const AUDIO_SEGMENTS = 16;
/** Patches per side an image is cut into when the request gives no explainPatch. */
export const DEFAULT_PATCHES_PER_SIDE = 8;

export interface ProcessedExplainPlan {
  method: 'patches' | 'segments' | 'tokens';
  /** The attributed output: the post-processing's, else the first FP32 output [rows] or [rows, classes]. */
  output: string;
  /** Occluded copies of each row (tokens: at most, the step's maxLength). */
  regions: number;
  /** Bytes one occluded copy feeds the model. */
  rowBytes: number;
  /** Image steps: the patch side in pixels of the model's input. */
  patch?: number;
}

/** How a processed model is explained, or a 400 naming why it cannot be. */
export function processedExplainPlan(
  m: { name: string; inputs: TensorSpec[]; outputs: TensorSpec[]; processing?: Processing | undefined },
  patch?: number,
): ProcessedExplainPlan {
  const p = m.processing!;
  if (p.inputs.length !== 1)
    throw badRequest(`model ${m.name} cannot be explained: its processing takes ${p.inputs.length} inputs, and an explanation occludes one`);
  const step = p.inputs[0]!;
  const output = explainedOutput(m, p);
  if (step.type === 'image') {
    const size = outputSize(step)!;
    const side = patch ?? Math.max(1, Math.ceil(Math.max(size.height, size.width) / DEFAULT_PATCHES_PER_SIDE));
    if (side > Math.max(size.height, size.width))
      throw badRequest(`parameters.explainPatch ${side} is larger than the model's ${size.width}x${size.height} input`);
    const regions = Math.ceil(size.height / side) * Math.ceil(size.width / side);
    return { method: 'patches', output, regions, rowBytes: 3 * size.height * size.width * (step.dtype === 'fp16' ? 2 : 4), patch: side };
  }
  if (patch !== undefined) throw badRequest(`parameters.explainPatch is for image inputs; model ${m.name} takes ${step.type}`);
  if (step.type === 'audio') {
    const per = step.logMel ? step.logMel.nMels * melFrames(step) : step.length;
    return { method: 'segments', output, regions: Math.min(AUDIO_SEGMENTS, timeLength(step)), rowBytes: 4 * per };
  }
  const fed = 1 + (step.attentionMask ? 1 : 0) + (step.tokenTypeIds ? 1 : 0);
  return { method: 'tokens', output, regions: step.maxLength, rowBytes: fed * step.maxLength * (step.dtype === 'int32' ? 4 : 8) };
}

/** Samples (or log-mel frames) along an audio input's time axis. */
export const timeLength = (s: Extract<Step, { type: 'audio' }>): number => (s.logMel ? melFrames(s) : s.length);

function explainedOutput(m: { name: string; outputs: TensorSpec[] }, p: Processing): string {
  if (p.post) return p.post.output;
  const out = m.outputs.find((o) => o.datatype === 'FP32' && (o.shape.length === 1 || o.shape.length === 2));
  if (!out) throw badRequest(`model ${m.name} cannot be explained: it has no FP32 output shaped [rows] or [rows, classes]`);
  return out.name;
}

/** Evaluations an explanation of `rows` rows costs at most: each row, its occluded copies, and the baseline once per row. */
export const processedEvaluations = (plan: ProcessedExplainPlan, rows: number) => rows * (2 + plan.regions);

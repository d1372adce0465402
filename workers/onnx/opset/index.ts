// The opset version converter: raises a model's default-domain opset, rewriting every operator whose
// signature changed on the way with its adapter (one file per operator family). Operators absent
// from the table kept their meaning between opset 7 and 17 (newer versions only widened types).
import { defaultOpset, GraphEditError, graphOf, type Node } from '../graph.ts';
import type { ModelProto } from '../proto.ts';
import { batchNormOutputs, batchNormSpatial } from './batch-norm.ts';
import { clip } from './clip.ts';
import { type Adapter, fail, makeContext } from './context.ts';
import { dropout } from './dropout.ts';
import { pad } from './pad.ts';
import { reduceOthers, reduceSum } from './reduce.ts';
import { scatter } from './scatter.ts';
import { slice } from './slice.ts';
import { softmax } from './softmax.ts';
import { split } from './split.ts';
import { squeeze } from './squeeze.ts';
import { topk } from './topk.ts';
import { resize, upsample } from './upsample.ts';

export const ADAPTERS: Adapter[] = [
  batchNormSpatial,
  batchNormOutputs,
  clip,
  dropout,
  pad,
  reduceSum,
  reduceOthers,
  scatter,
  slice,
  softmax,
  split,
  squeeze,
  topk,
  upsample,
  resize,
];

/** The highest opset the converter writes: every adapter above is known up to here. */
export const MAX_OPSET = 17;

/** Operators that left the standard without a successor the converter could write. */
const REMOVED: Record<string, number> = { ImageScaler: 10, Crop: 10, Affine: 10, ParametricSoftplus: 10, ScaledTanh: 10, GivenTensorFill: 10, Scale: 10 };

/** IR version each opset needs at least (the checker refuses an older IR). */
const irFor = (opset: number) => (opset <= 8 ? 3 : opset === 9 ? 4 : opset === 10 ? 5 : opset === 11 ? 6 : opset <= 14 ? 7 : 8);

const isDefault = (domain: string | null | undefined) => !domain || domain === 'ai.onnx';

function adaptNode(n: Node, from: number, to: number, ctx: ReturnType<typeof makeContext>): Node[] {
  if (REMOVED[n.opType] !== undefined && REMOVED[n.opType]! <= to) fail(n, `is not part of opset ${to}`);
  const steps = ADAPTERS.filter((a) => a.ops.includes(n.opType) && from < a.since && a.since <= to).sort((a, b) => a.since - b.since);
  let nodes = [n];
  for (const a of steps) nodes = nodes.flatMap((x) => (a.ops.includes(x.opType) ? a.adapt(x, ctx) : [x]));
  return nodes;
}

/**
 * Moves the model's default-domain opset up to `target` (never down; a no-op when already there).
 * Throws GraphEditError naming the node when an operator cannot be carried over.
 */
export function convertOpset(m: ModelProto, target: number): { from: number; to: number; rewritten: number } {
  const from = defaultOpset(m);
  if (from >= target) return { from, to: from, rewritten: 0 };
  if (target > MAX_OPSET) throw new GraphEditError(`the opset converter goes up to ${MAX_OPSET}, not ${target}`);
  if (from < 7) throw new GraphEditError(`the model's opset ${from} is older than 7, the oldest the converter reads`);
  const g = graphOf(m);
  const ctx = makeContext(g, from, target);
  const out: Node[] = [];
  let rewritten = 0;
  for (const n of g.node) {
    if (!isDefault(n.domain)) {
      out.push(n);
      continue;
    }
    const nodes = adaptNode(n, from, target, ctx);
    if (nodes.length !== 1 || nodes[0] !== n || ADAPTERS.some((a) => a.ops.includes(n.opType) && from < a.since && a.since <= target)) rewritten++;
    out.push(...nodes);
  }
  g.node = out;
  for (const o of m.opsetImport ?? []) if (isDefault(o.domain)) o.version = target;
  m.irVersion = Math.max(Number(m.irVersion ?? 3), irFor(target));
  return { from, to: target, rewritten };
}

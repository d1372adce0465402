// Upsample (scales as an attribute until opset 9, an input from 9) is gone from opset 10: it becomes
// Resize. Resize itself changed at 11 (roi input, coordinate modes); Upsample's and Resize-10's
// arithmetic is "asymmetric" with nearest rounding down, so the rewrite says so explicitly.
import { attrString, type AdaptContext, type Adapter, dropAttrs, fail, findAttr, float32s, setInputs, strAttr } from './context.ts';
import type { Node } from '../graph.ts';

function scalesInput(n: Node, ctx: AdaptContext): string {
  const a = findAttr(n, 'scales');
  dropAttrs(n, 'scales');
  if (a) return ctx.constant(`${n.name || n.output[0]}_scales`, float32s(Array.from(a.floats ?? [], Number)));
  if (!n.input[1]) fail(n, 'has no scales');
  return n.input[1];
}

function toResize11(n: Node, ctx: AdaptContext, scales: string): Node[] {
  const mode = attrString(findAttr(n, 'mode')) ?? 'nearest';
  if (mode !== 'nearest' && mode !== 'linear') fail(n, `mode "${mode}" has no Resize equivalent`);
  dropAttrs(n, 'coordinate_transformation_mode', 'nearest_mode');
  n.attribute.push(strAttr('coordinate_transformation_mode', 'asymmetric'));
  if (mode === 'nearest') n.attribute.push(strAttr('nearest_mode', 'floor'));
  // roi is a required input at opsets 11-12 (it may be named '' from 13 on).
  const roi = ctx.to < 13 ? ctx.constant(`${n.name || n.output[0]}_roi`, float32s([], [0])) : '';
  n.input = [n.input[0]!, roi, scales];
  return [n];
}

export const upsample: Adapter = {
  ops: ['Upsample'],
  since: 10,
  adapt: (n, ctx) => {
    const scales = scalesInput(n, ctx);
    n.opType = 'Resize';
    if (ctx.to >= 11) return toResize11(n, ctx, scales);
    setInputs(n, [n.input[0]!, scales]);
    return [n];
  },
};

export const resize: Adapter = {
  ops: ['Resize'],
  since: 11,
  adapt: (n, ctx) => toResize11(n, ctx, n.input[1] ?? fail(n, 'has no scales input')),
};

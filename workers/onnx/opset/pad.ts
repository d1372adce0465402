// Pad: from opset 11, pads and the constant value are inputs; `mode` stays an attribute.
import { attrString, type Adapter, dropAttrs, fail, findAttr, float32s, intsToInput, setInputs } from './context.ts';

export const pad: Adapter = {
  ops: ['Pad'],
  since: 11,
  adapt: (n, ctx) => {
    const pads = intsToInput(n, ctx, 'pads');
    if (!pads) fail(n, 'has no pads attribute');
    const value = findAttr(n, 'value');
    dropAttrs(n, 'value');
    const mode = attrString(findAttr(n, 'mode')) ?? 'constant';
    // The constant must have the data's type; exporters pad float tensors, and a value of 0 is the default anyway.
    const v = value && mode === 'constant' && value.f ? ctx.constant(`${n.name || n.output[0]}_value`, float32s([value.f], [])) : '';
    setInputs(n, [n.input[0]!, pads, v]);
    return [n];
  },
};

// Clip: from opset 11, min and max are scalar inputs.
import { type Adapter, dropAttrs, findAttr, float32s, setInputs } from './context.ts';

export const clip: Adapter = {
  ops: ['Clip'],
  since: 11,
  adapt: (n, ctx) => {
    const bound = (which: 'min' | 'max') => {
      const a = findAttr(n, which);
      return a ? ctx.constant(`${n.name || n.output[0]}_${which}`, float32s([a.f ?? 0], [])) : '';
    };
    const [lo, hi] = [bound('min'), bound('max')];
    dropAttrs(n, 'min', 'max');
    setInputs(n, [n.input[0]!, lo, hi]);
    return [n];
  },
};

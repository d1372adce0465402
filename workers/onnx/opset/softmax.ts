// Softmax, LogSoftmax, Hardmax: before opset 13 the input is flattened to 2-D at `axis` (default 1)
// and normalized over everything after it; from 13 over that one axis. The old meaning is kept with
// Flatten -> op(axis=-1) -> Reshape back to the input's shape, unless axis=-1 (where both agree).
import { type Adapter, dropAttrs, findAttr, intAttr, newNode } from './context.ts';

export const softmax: Adapter = {
  ops: ['Softmax', 'LogSoftmax', 'Hardmax'],
  since: 13,
  adapt: (n, ctx) => {
    const a = findAttr(n, 'axis');
    const axis = a ? Number(a.i) : 1;
    if (axis === -1) return [n];
    const base = n.name || n.output[0]!;
    const [shape, flat, y] = [ctx.fresh(`${base}_shape`), ctx.fresh(`${base}_flat`), ctx.fresh(`${base}_2d`)];
    const out = n.output[0]!;
    dropAttrs(n, 'axis');
    n.attribute.push(intAttr('axis', -1));
    const x = n.input[0]!;
    n.input = [flat];
    n.output = [y];
    return [
      newNode('Shape', [x], [shape], ctx.fresh(`${base}_Shape`)),
      newNode('Flatten', [x], [flat], ctx.fresh(`${base}_Flatten`), [intAttr('axis', axis)]),
      n,
      newNode('Reshape', [y, shape], [out], ctx.fresh(`${base}_Reshape`)),
    ];
  },
};

// BatchNormalization: `spatial` is gone from opset 9 (spatial=1 was the only common form); from
// opset 14 the running mean/var outputs exist only in training mode, so unused ones are dropped.
import { type Adapter, dropAttrs, fail, findAttr } from './context.ts';

export const batchNormSpatial: Adapter = {
  ops: ['BatchNormalization'],
  since: 9,
  adapt: (n) => {
    const s = findAttr(n, 'spatial');
    if (s && Number(s.i) === 0) fail(n, 'spatial=0 has no equivalent from opset 9');
    dropAttrs(n, 'spatial', 'is_test', 'consumed_inputs');
    return [n];
  },
};

export const batchNormOutputs: Adapter = {
  ops: ['BatchNormalization'],
  since: 14,
  adapt: (n, ctx) => {
    if (n.output.slice(1).some((o) => o && ctx.used(o))) fail(n, 'uses its training-mode outputs');
    n.output = [n.output[0]!];
    return [n];
  },
};

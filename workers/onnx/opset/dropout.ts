// Dropout: an identity at inference. Its mask changed type at opset 10 and its ratio became an
// input at 12; an inference graph does not need either, so it becomes Identity when the mask is unused.
import { type Adapter, fail, newNode } from './context.ts';

export const dropout: Adapter = {
  ops: ['Dropout'],
  since: 10,
  adapt: (n, ctx) => {
    if (n.output[1] && ctx.used(n.output[1])) fail(n, 'its mask output is used');
    return [newNode('Identity', [n.input[0]!], [n.output[0]!], n.name)];
  },
};

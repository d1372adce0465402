// TopK: from opset 10, k is a 1-D int64 input.
import { type Adapter, bigInts, dropAttrs, fail, findAttr, int64s } from './context.ts';

export const topk: Adapter = {
  ops: ['TopK'],
  since: 10,
  adapt: (n, ctx) => {
    const k = bigInts(findAttr(n, 'k'));
    const a = findAttr(n, 'k');
    if (!a) fail(n, 'has no k attribute');
    dropAttrs(n, 'k');
    n.input = [n.input[0]!, ctx.constant(`${n.name || n.output[0]}_k`, int64s([k.length ? k[0]! : BigInt(String(a.i))]))];
    return [n];
  },
};

// Slice: from opset 10, starts/ends/axes are inputs (and steps appears).
import { type Adapter, intsToInput, setInputs } from './context.ts';

export const slice: Adapter = {
  ops: ['Slice'],
  since: 10,
  adapt: (n, ctx) => {
    const starts = intsToInput(n, ctx, 'starts');
    const ends = intsToInput(n, ctx, 'ends');
    const axes = intsToInput(n, ctx, 'axes');
    setInputs(n, [n.input[0]!, starts, ends, axes]);
    return [n];
  },
};

// Split: from opset 13, the sizes are an int64 input.
import { type Adapter, intsToInput, setInputs } from './context.ts';

export const split: Adapter = {
  ops: ['Split'],
  since: 13,
  adapt: (n, ctx) => {
    setInputs(n, [n.input[0]!, intsToInput(n, ctx, 'split')]);
    return [n];
  },
};

// Squeeze/Unsqueeze: from opset 13, axes are an int64 input.
import { type Adapter, intsToInput, setInputs } from './context.ts';

export const squeeze: Adapter = {
  ops: ['Squeeze', 'Unsqueeze'],
  since: 13,
  adapt: (n, ctx) => {
    setInputs(n, [n.input[0]!, intsToInput(n, ctx, 'axes')]);
    return [n];
  },
};

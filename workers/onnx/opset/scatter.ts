// Scatter is gone from opset 11: ScatterElements has the same inputs and meaning.
import type { Adapter } from './context.ts';

export const scatter: Adapter = {
  ops: ['Scatter'],
  since: 11,
  adapt: (n) => {
    n.opType = 'ScatterElements';
    return [n];
  },
};

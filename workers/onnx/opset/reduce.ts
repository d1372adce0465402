// Reductions: ReduceSum takes axes as an input from opset 13; the others only from opset 18 (beyond
// what the rewrites need), so between 7 and 17 they keep their form.
import { type Adapter, intsToInput, setInputs } from './context.ts';

export const reduceSum: Adapter = {
  ops: ['ReduceSum'],
  since: 13,
  adapt: (n, ctx) => {
    setInputs(n, [n.input[0]!, intsToInput(n, ctx, 'axes')]);
    return [n];
  },
};

const LATER = ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'];
export const reduceOthers: Adapter = {
  ops: LATER,
  since: 18,
  adapt: (n, ctx) => {
    setInputs(n, [n.input[0]!, intsToInput(n, ctx, 'axes')]);
    return [n];
  },
};

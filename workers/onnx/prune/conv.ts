// Structured pruning of convolutions: the output channels of a Conv with the smallest L1 norm go,
// and every layer that reads them follows: BatchNormalization parameters, depthwise convolutions
// (their channels and `group`), and the input channels of the next Conv. Chains stop at anything
// else (a residual Add, a Concat), which keeps the channel count fixed there.
import { attr, type Graph, type Node } from '../graph.ts';
import { walker } from './dense.ts';
import { type Weight, Weights } from './weights.ts';

/** Ops that keep channels as they are, one output channel per input channel. */
const CHANNELWISE = new Set([
  'Relu',
  'LeakyRelu',
  'Sigmoid',
  'Tanh',
  'Elu',
  'Selu',
  'HardSigmoid',
  'HardSwish',
  'Softplus',
  'Identity',
  'Clip',
  'MaxPool',
  'AveragePool',
]);

type Step = { kind: 'bn' | 'depthwise'; node: Node };

const groupOf = (n: Node) => attr(n, 'group') ?? 1;

/** Keeps `kept` indices along `axis` of a weight. */
export function sliceAxis(w: Weight, axis: number, kept: number[]): Weight {
  const outer = w.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = w.dims[axis]!;
  const inner = w.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const data = new Float32Array(outer * kept.length * inner);
  for (let o = 0; o < outer; o++)
    kept.forEach((j, t) => data.set(w.data.subarray((o * n + j) * inner, (o * n + j + 1) * inner), (o * kept.length + t) * inner));
  const dims = [...w.dims];
  dims[axis] = kept.length;
  return { name: w.name, dims, data };
}

/** Resize/Upsample by constant scales that keep the channel axis; Pad that pads no channels. */
function keepsChannels(n: Node, w: Weights): boolean {
  if (n.opType === 'Resize' || n.opType === 'Upsample') {
    const scales = w.get(n.input[n.opType === 'Resize' ? 2 : 1] ?? '');
    return !!scales && scales.data[1] === 1 && !n.input[3];
  }
  if (n.opType === 'Pad') {
    const a = n.attribute.find((x) => x.name === 'pads');
    const ints = n.input[1] ? w.getInts(n.input[1]) : undefined;
    const pads = a ? (a.ints ?? []).map(Number) : ints ? Array.from(ints, Number) : [1, 1];
    const rank = pads.length / 2;
    return pads[1] === 0 && pads[rank + 1] === 0 && (!n.input[2] || w.has(n.input[2]));
  }
  return false;
}

/** From a Conv's output to the next Conv that reads all its channels, through channel-wise steps. */
function walkChain(a: Node, channels: number, w: Weights, walk: ReturnType<typeof walker>): { steps: Step[]; target: Node } | undefined {
  const steps: Step[] = [];
  const own = (x: string | undefined) => !x || (!!w.get(x) && !w.shared(x));
  let v = a.output[0]!;
  for (let n = walk.next(v); n && n.input[0] === v; n = walk.next(v)) {
    if ((CHANNELWISE.has(n.opType) && n.input.slice(1).every((x) => !x || w.has(x))) || keepsChannels(n, w)) {
      v = n.output[0]!;
      continue;
    }
    if (n.opType === 'BatchNormalization' && n.input.slice(1, 5).every(own)) {
      steps.push({ kind: 'bn', node: n });
      v = n.output[0]!;
      continue;
    }
    if ((n.opType !== 'Conv' && n.opType !== 'ConvTranspose') || !own(n.input[1]) || !own(n.input[2])) return undefined;
    const dims = w.get(n.input[1]!)!.dims;
    // ConvTranspose weights are [C_in, C_out / group, k...]: the input channels are axis 0.
    if (n.opType === 'ConvTranspose') return groupOf(n) === 1 && dims[0] === channels ? { steps, target: n } : undefined;
    if (groupOf(n) === 1 && dims[1] === channels) return { steps, target: n };
    if (groupOf(n) === channels && dims[0] === channels && dims[1] === 1) {
      steps.push({ kind: 'depthwise', node: n });
      v = n.output[0]!;
      continue;
    }
    return undefined;
  }
  return undefined;
}

function topChannelsByL1(wa: Weight, k: number): number[] {
  const m = wa.dims[0]!;
  const per = wa.data.length / m;
  const score = Array.from({ length: m }, (_, j) => {
    let s = 0;
    for (let i = 0; i < per; i++) s += Math.abs(wa.data[j * per + i]!);
    return { j, s };
  });
  return score
    .sort((x, y) => y.s - x.s)
    .slice(0, k)
    .map((x) => x.j)
    .sort((x, y) => x - y);
}

function applyChain(a: Node, chain: { steps: Step[]; target: Node }, kept: number[], w: Weights): void {
  const cut = (name: string | undefined, axis = 0) => {
    if (name) w.set(sliceAxis(w.get(name)!, axis, kept));
  };
  cut(a.input[1]);
  cut(a.input[2]);
  for (const s of chain.steps) {
    if (s.kind === 'bn') {
      for (const x of s.node.input.slice(1, 5)) cut(x);
      continue;
    }
    cut(s.node.input[1]);
    cut(s.node.input[2]);
    const g = s.node.attribute.find((x) => x.name === 'group')!;
    g.i = kept.length;
  }
  cut(chain.target.input[1], chain.target.opType === 'ConvTranspose' ? 0 : 1);
}

/** Prunes every Conv whose channels can be followed; returns how many. */
export function pruneConvChannels(g: Graph, keep: number): number {
  const w = new Weights(g);
  const walk = walker(g);
  let pruned = 0;
  for (const a of g.node) {
    if (a.opType !== 'Conv' || a.domain !== '' || groupOf(a) !== 1 || !w.get(a.input[1]!) || w.shared(a.input[1]!) || (a.input[2] && w.shared(a.input[2])))
      continue;
    const wa = w.get(a.input[1]!)!;
    const m = wa.dims[0]!;
    const k = Math.max(1, Math.round(m * keep));
    const chain = k < m ? walkChain(a, m, w, walk) : undefined;
    if (!chain) continue;
    applyChain(a, chain, topChannelsByL1(wa, k), w);
    pruned++;
  }
  return pruned;
}

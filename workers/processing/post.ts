// A version's declared post-processing of one output [n, classes]: softmax (`probabilities`), the
// best class's label (`label`), the k best (`top_k_labels`, `top_k_scores`); a score under the
// threshold gives the empty label. Labels are the version's class names, else the class indices.
import type { PostStep } from '../../core/processing/spec.ts';
import type { RawTensor } from '../../core/tensors.ts';

export function softmaxRows(x: Float32Array, rows: number, classes: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    const o = r * classes;
    let max = -Infinity;
    for (let c = 0; c < classes; c++) max = Math.max(max, x[o + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[o + c] = Math.exp(x[o + c]! - max);
    for (let c = 0; c < classes; c++) out[o + c] = out[o + c]! / sum;
  }
  return out;
}

/** The outputs the post-processing adds, from the model's raw outputs. */
export function postProcess(step: PostStep, labels: string[] | undefined, outputs: Record<string, RawTensor>): Record<string, RawTensor> {
  const o = outputs[step.output];
  if (!o || !(o.data instanceof Float32Array) || o.dims.length !== 2) return {};
  const [rows, classes] = o.dims as [number, number];
  const scores = step.softmax ? softmaxRows(o.data, rows, classes) : o.data;
  const name = (c: number) => (step.threshold !== undefined && !(scores[c]! >= step.threshold) ? '' : (labels?.[c % classes] ?? String(c % classes)));
  const added: Record<string, RawTensor> = {};
  if (step.softmax) added.probabilities = { type: 'float32', dims: [rows, classes], data: scores };
  if (step.argmax) {
    const label: string[] = [];
    for (let r = 0; r < rows; r++) {
      let best = r * classes;
      for (let c = 1; c < classes; c++) if (scores[r * classes + c]! > scores[best]!) best = r * classes + c;
      label.push(name(best));
    }
    added.label = { type: 'string', dims: [rows], data: label };
  }
  if (step.topK !== undefined) {
    const k = Math.min(step.topK, classes);
    const names: string[] = [];
    const top = new Float32Array(rows * k);
    for (let r = 0; r < rows; r++) {
      // Stable: equal scores keep class order.
      const order = Array.from({ length: classes }, (_, c) => r * classes + c).sort((a, b) => scores[b]! - scores[a]! || a - b);
      for (let j = 0; j < k; j++) {
        names.push(name(order[j]!));
        top[r * k + j] = scores[order[j]!]!;
      }
    }
    added.top_k_labels = { type: 'string', dims: [rows, k], data: names };
    added.top_k_scores = { type: 'float32', dims: [rows, k], data: top };
  }
  return added;
}

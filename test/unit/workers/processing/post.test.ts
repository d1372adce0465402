// Post-processing of logits: softmax rows sum to 1 in order, argmax and top-k name the classes by the
// version's labels (indices without), and a score under the threshold gives the empty label.
import { describe, expect, it } from 'vitest';
import { postSchema } from '../../../../core/processing/spec.ts';
import { postProcess } from '../../../../workers/processing/post.ts';

const logits = { type: 'float32', dims: [2, 3], data: new Float32Array([1, 3, 2, 0, 0, 5]) };

describe('postProcess', () => {
  it('softmax, argmax label and top-k with labels', () => {
    const out = postProcess(postSchema.parse({ output: 'y', softmax: true, argmax: true, topK: 2 }), ['cat', 'dog', 'eel'], { y: logits });
    const p = out.probabilities!.data as Float32Array;
    expect(p[0]! + p[1]! + p[2]!).toBeCloseTo(1, 6);
    expect(p[1]).toBeGreaterThan(p[2]!);
    expect(out.label!.data).toEqual(['dog', 'eel']);
    expect(out.top_k_labels).toMatchObject({ dims: [2, 2], data: ['dog', 'eel', 'eel', 'cat'] });
    expect((out.top_k_scores!.data as Float32Array)[0]).toBeCloseTo(p[1]!, 6);
  });

  it('a threshold leaves the label empty; without labels the class index is the label', () => {
    const out = postProcess(postSchema.parse({ output: 'y', softmax: true, argmax: true, threshold: 0.9 }), undefined, { y: logits });
    expect(out.label!.data).toEqual(['', '2']);
    expect(out.probabilities).toBeDefined();
    expect(postProcess(postSchema.parse({ output: 'y', argmax: true }), undefined, { y: logits }).probabilities).toBeUndefined();
  });
});

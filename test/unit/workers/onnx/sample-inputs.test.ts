// Sample inputs made from a model's own graph: token ids within the embedding table, booleans,
// float16, sizes for open dimensions.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildModel, floatTensor, node } from '../../../../workers/onnx/builder.ts';
import { DT } from '../../../../workers/onnx/proto.ts';
import { concreteShape, sampleFeeds, vocabularyOf } from '../../../../workers/onnx/sample-inputs.ts';
import { decodeModel } from '../../../../workers/onnx/proto.ts';
import { graphOf } from '../../../../workers/onnx/graph.ts';
import { textClassifier } from '../../../fixtures/text-models.ts';

/** tokens INT64 [batch, seq] -> Cast -> Gather from a [37, 4] table; mask BOOL; scale FP16. */
const model = buildModel({
  opset: 13,
  inputs: [
    { name: 'tokens', elemType: DT.INT64, shape: ['batch', 'seq'] },
    { name: 'mask', elemType: DT.BOOL, shape: ['batch', 'seq'] },
    { name: 'scale', elemType: DT.FLOAT16, shape: ['batch', 1] },
  ],
  outputs: [
    { name: 'emb', elemType: DT.FLOAT, shape: ['batch', 'seq', 4] },
    { name: 'm', elemType: DT.BOOL, shape: ['batch', 'seq'] },
    { name: 's', elemType: DT.FLOAT16, shape: ['batch', 1] },
  ],
  nodes: [
    node('Cast', ['tokens'], ['t32'], { to: DT.INT32 }),
    node('Gather', ['table', 't32'], ['emb']),
    node('Identity', ['mask'], ['m']),
    node('Identity', ['scale'], ['s']),
  ],
  initializers: [
    floatTensor(
      'table',
      [37, 4],
      Float32Array.from({ length: 148 }, (_, i) => i),
    ),
  ],
});

describe('sample inputs', () => {
  it('token ids stay within the table they index, and every type runs', async () => {
    const { feeds, inputs } = sampleFeeds(model, 8, 3);
    expect(inputs.map((i) => i.values)).toEqual([
      'token ids in [0, 37) (embedding table "tokens" indexes)',
      'random booleans',
      'seeded normal values (mean 0, sd 1)',
    ]);
    const ids = Array.from(feeds.tokens!.data as BigInt64Array, Number);
    expect(ids).toHaveLength(8 * 16);
    expect(Math.min(...ids)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...ids)).toBeLessThan(37);
    expect(new Set(ids).size).toBeGreaterThan(20); // spread over the table, not one id
    const s = await ort.InferenceSession.create(model);
    const out = await s.run(
      Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims)])),
    );
    expect(out.emb!.dims).toEqual([8, 16, 4]);
    expect(new Set(Array.from(out.m!.data as Uint8Array)).size).toBe(2);
  });

  it("a string input gets seeded sentences of the model's own TfIdfVectorizer words, which the model scores", async () => {
    const text = textClassifier({ rank: 2 });
    const vocabulary = new Set(vocabularyOf(graphOf(decodeModel(text))));
    expect(vocabulary.has('pizza') && vocabulary.has('東京') && vocabulary.has('cup')).toBe(true);
    const { feeds, inputs } = sampleFeeds(text, 40, 2);
    expect(inputs[0]!.values).toBe(`sentences of 3 to 12 words from the model's vocabulary (${vocabulary.size} TfIdfVectorizer words)`);
    const t = feeds.text!;
    expect(t.type).toBe('string');
    expect(t.dims).toEqual([40, 1]);
    const words = (t.data as string[]).flatMap((x) => x.split(' '));
    expect(words.filter((w) => vocabulary.has(w)).length / words.length).toBeGreaterThan(0.8);
    expect(sampleFeeds(text, 40, 2).feeds.text!.data).toEqual(t.data); // seeded
    const s = await ort.InferenceSession.create(text);
    const out = await s.run({ text: new ort.Tensor('string', t.data as string[], t.dims) });
    expect(new Set(out.label!.data as string[]).size).toBe(4); // the sentences reach every class
  });

  it('open sizes: batch first, spatial sizes (multiples of 32), wide text lines when only the width is open', () => {
    expect(concreteShape(['n', 3, 'h', 'w'], 4)).toEqual([4, 3, 64, 64]);
    expect(concreteShape(['n', 3, 48, 'w'], 4)).toEqual([4, 3, 48, 192]);
    expect(concreteShape(['n', 3, 'h', 'w'], 4, 224)).toEqual([4, 3, 224, 224]);
    expect(concreteShape(['n', 'seq'], 2)).toEqual([2, 16]);
  });
});

// The check every batch test ends with: the output file has every input row exactly once, in
// order, with its id, and the values of a direct onnxruntime run of the same model.
import { expect } from 'vitest';
import { directRun } from '../fixtures/models.ts';

/** `text` is the batch's JSONL output; `model` takes `input` [n, features] and gives `output`. */
export async function expectExactOutput(text: string, model: Uint8Array, x: Float32Array, n: number, features: number): Promise<void> {
  const out = text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  expect(out).toHaveLength(n);
  const expected = (await directRun(model, { input: { data: x, dims: [n, features] } })).output!;
  const width = expected.length / n;
  out.forEach((o, i) => {
    if (o.row !== i || o.id !== i) throw new Error(`line ${i} holds row ${o.row}`);
    for (let j = 0; j < width; j++) if (Math.abs(o.outputs.output[j] - expected[i * width + j]!) > 1e-5) throw new Error(`row ${i} differs`);
  });
}

// Every exported corpus model through every compression method: the result loads in onnxruntime,
// passes the official checker, and agrees with its parent on realistic inputs.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { toFloat16 } from '../../../../workers/onnx/fp16.ts';
import { quantizeInt8 } from '../../../../workers/onnx/quantize.ts';
import { CORPUS, corpusBytes, corpusFeeds } from '../../../fixtures/exported/corpus.ts';
import { cosine, spread, top1 } from '../../../helpers/agreement.ts';
import { onnxCheck } from '../../../helpers/onnx-checker.ts';

const BATCH = 16;

async function outputs(bytes: Uint8Array, feeds: Record<string, ort.Tensor>) {
  const s = await ort.InferenceSession.create(bytes);
  try { return await s.run(feeds); } finally { await s.release(); }
}

async function agreement(parent: Uint8Array, child: Uint8Array) {
  expect(await onnxCheck(child)).toBeNull();
  const feeds = corpusFeeds(parent, BATCH, 7);
  const [a, b] = [await outputs(parent, feeds), await outputs(child, feeds)];
  expect(spread(a)).toBeGreaterThan(1e-3);
  return { cos: cosine(a, b), top1: top1(a, b) };
}

describe.each(CORPUS)('$name (opset $opset)', ({ name }) => {
  const parent = corpusBytes(name);

  it('fp16: cosine >= 0.99', async () => {
    const r = toFloat16(parent);
    expect((await agreement(parent, r.bytes)).cos).toBeGreaterThanOrEqual(0.99);
  });

  it('int8 dynamic: top-1 >= 0.9 or cosine >= 0.98', async () => {
    const r = quantizeInt8(parent);
    const { cos, top1: t } = await agreement(parent, r.bytes);
    expect(cos >= 0.98 || (t ?? 0) >= 0.9, `cosine ${cos}, top-1 ${t}`).toBe(true);
  });
});

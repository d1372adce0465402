// Every exported corpus model through every compression method: the result loads in onnxruntime,
// passes the official checker, and agrees with its parent on realistic inputs.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { toFloat16 } from '../../../../workers/onnx/fp16.ts';
import { pruneMagnitude, pruneStructured } from '../../../../workers/onnx/prune/index.ts';
import { convertOpset } from '../../../../workers/onnx/opset/index.ts';
import { decodeModel, encodeModel } from '../../../../workers/onnx/proto.ts';
import { quantizeInt8 } from '../../../../workers/onnx/quantize/dynamic.ts';
import { calibrationModel, observeRanges, quantizeStatic, type Ranges } from '../../../../workers/onnx/quantize/static.ts';
import { CORPUS, corpusBytes, corpusFeeds } from '../../../fixtures/exported/corpus.ts';
import { cosine, spread, top1 } from '../../../helpers/agreement.ts';
import { onnxCheck } from '../../../helpers/onnx-checker.ts';

const BATCH = 16;

async function outputs(bytes: Uint8Array, feeds: Record<string, ort.Tensor>) {
  const s = await ort.InferenceSession.create(bytes);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

/** Activation ranges from a few calibration batches (other seeds than the agreement check's). */
async function calibrate(bytes: Uint8Array): Promise<Ranges> {
  const c = calibrationModel(bytes);
  const s = await ort.InferenceSession.create(c.bytes);
  const ranges: Ranges = {};
  for (const seed of [11, 12, 13]) observeRanges(ranges, await s.run(corpusFeeds(bytes, 8, seed)), c.tensors);
  await s.release();
  return ranges;
}

/** The parent's answers on the agreement inputs, computed once per model for all its methods. */
const parentAnswers = new Map<Uint8Array, Promise<{ feeds: Record<string, ort.Tensor>; out: ort.InferenceSession.OnnxValueMapType }>>();
function answersOf(parent: Uint8Array) {
  let p = parentAnswers.get(parent);
  if (!p) {
    const feeds = corpusFeeds(parent, BATCH, 7);
    p = outputs(parent, feeds).then((out) => ({ feeds, out }));
    parentAnswers.set(parent, p);
  }
  return p;
}

async function agreement(parent: Uint8Array, child: Uint8Array) {
  expect(await onnxCheck(child)).toBeNull();
  const { feeds, out: a } = await answersOf(parent);
  const b = await outputs(child, feeds);
  expect(spread(a)).toBeGreaterThan(1e-3);
  return { cos: cosine(a, b), top1: top1(a, b) };
}

describe.each(CORPUS)('$name (opset $opset)', ({ name, kind }) => {
  const parent = corpusBytes(name);

  it('opset converter: up to 17, same answers', async () => {
    const m = decodeModel(parent);
    convertOpset(m, 17);
    const { cos } = await agreement(parent, encodeModel(m));
    expect(cos).toBeGreaterThan(0.99999);
  });

  it('fp16: cosine >= 0.99', async () => {
    const r = toFloat16(parent);
    expect((await agreement(parent, r.bytes)).cos).toBeGreaterThanOrEqual(0.99);
  });

  it('int8 dynamic: Conv, Gather, attention quantized; top-1 >= 0.9 or cosine >= 0.98', async () => {
    const r = quantizeInt8(parent);
    const ops = new Set(r.report.quantized.map((q) => q.op));
    if (kind === 'cnn' || kind === 'audio') expect(ops).toContain('Conv');
    if (kind === 'text') expect(ops).toContain('Gather');
    if (name.startsWith('transformer')) expect(r.report.quantized.filter((q) => q.op === 'MatMul').length).toBe(12);
    if (name.startsWith('lstm')) expect(ops).toContain('LSTM');
    // GRU has no int8 form in onnxruntime: its weights stay float and the model shrinks less.
    expect(r.bytes.length / parent.length).toBeLessThan(name.startsWith('gru') ? 0.6 : 0.35);
    const { cos, top1: t } = await agreement(parent, r.bytes);
    expect(cos >= 0.98 || (t ?? 0) >= 0.9, `cosine ${cos}, top-1 ${t}`).toBe(true);
  });

  it('int8 static (QDQ): top-1 >= 0.9 or cosine >= 0.98, at most 0.35x the bytes', async () => {
    const r = quantizeStatic(parent, await calibrate(parent));
    expect(r.report.quantized.length).toBeGreaterThan(0);
    // Small models keep proportionally more bytes in scales, zero points and names.
    expect(r.bytes.length / parent.length).toBeLessThan(name.startsWith('gru') ? 0.6 : parent.length > 300_000 ? 0.35 : 0.5);
    const { cos, top1: t } = await agreement(parent, r.bytes);
    expect(cos >= 0.98 || (t ?? 0) >= 0.9, `cosine ${cos}, top-1 ${t}`).toBe(true);
  });

  it('magnitude pruning: every weighted layer (Conv, Gemm, MatMul, LSTM/GRU W and R) at 30%, close answers', async () => {
    const r = pruneMagnitude(parent, 0.3);
    const layers = r.pruned!.length;
    expect(layers).toBeGreaterThan(0);
    expect(r.paramsAfter / r.paramsBefore).toBeLessThan(0.85);
    if (/lstm|gru/.test(name)) expect(layers).toBeGreaterThanOrEqual(3); // W, R and the classifier
    const { cos } = await agreement(parent, r.bytes);
    expect(cos).toBeGreaterThan(0.8);
  });

  it('structured pruning: convolution channels (with the layers after them) or a clear refusal', async () => {
    if (kind === 'text') {
      expect(() => pruneStructured(parent, 0.75)).toThrow(/nothing to prune: no chain/);
      return;
    }
    const r = pruneStructured(parent, 0.75);
    expect(r.layers).toBeGreaterThan(0);
    expect(r.paramsAfter).toBeLessThan(r.paramsBefore);
    expect(r.bytes.length).toBeLessThan(parent.length);
    const { cos } = await agreement(parent, r.bytes);
    expect(cos).toBeGreaterThan(0.5);
  });
});

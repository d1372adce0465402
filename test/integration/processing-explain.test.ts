// Explanations of models with declared processing, by occlusion of the tensor the processing gives:
// a CNN's image input in square patches set to the processing's mid-grey, an audio model's samples in
// 16 runs set to silence, a tokenizer-backed text model's tokens removed one at a time. Every
// attribution is compared with the same occlusion computed here (preprocessed by the test's own
// reference code, run in onnxruntime directly), within 1e-4; the map comes back in the input's geometry.
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildModel, floatTensor, node } from '../../workers/onnx/builder.ts';
import { DT } from '../../workers/onnx/proto.ts';
import { CLASSIFIER_PROCESSING, CLASSIFIER_REF, GREEN_RECT, RED_CIRCLE, draw, reference } from '../fixtures/images.ts';
import { convNet, directRun } from '../fixtures/models.ts';
import { noise, tone, wav } from '../fixtures/sounds.ts';
import { TOKENIZER_JSON, textModel } from '../fixtures/texts.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const cnn = convNet(11);
const C = CLASSIFIER_REF.crop;
const RATE = 8000;
const LENGTH = 320;
const ears = buildModel({
  inputs: [{ name: 'wave', elemType: DT.FLOAT, shape: ['n', LENGTH] }],
  outputs: [{ name: 'scores', elemType: DT.FLOAT, shape: ['n', 3] }],
  nodes: [node('MatMul', ['wave', 'W'], ['scores'])],
  initializers: [floatTensor('W', [LENGTH, 3], noise(LENGTH * 3, 5, 0.2))],
});
const words = textModel();
const MAX = 8;
const TEXT_STEP = { type: 'text', input: 'text', maxLength: MAX, attentionMask: 'attention_mask', tokenTypeIds: 'token_type_ids' };

let p: TestPlatform;
const api = (path: string, init?: RequestInit) => fetch(`${p.url}${path}`, init);
const post = (path: string, body: unknown) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const upload = (name: string, model: Uint8Array, processing?: unknown) =>
  api(`/v1/models/${name}/versions`, {
    method: 'POST',
    body: Buffer.from(model),
    headers: { 'content-type': 'application/octet-stream', ...(processing ? { 'modelq-processing': JSON.stringify(processing) } : {}) },
  });

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await upload('cnn', cnn, CLASSIFIER_PROCESSING)).status).toBe(201);
  expect(
    (await upload('ears', ears, { inputs: [{ type: 'audio', input: 'wave', sampleRate: RATE, length: LENGTH }], post: { output: 'scores', softmax: true } }))
      .status,
  ).toBe(201);
  expect((await upload('words', words)).status).toBe(201);
  expect((await api('/v1/models/words/versions/1/processing/files/tokenizer.json', { method: 'PUT', body: JSON.stringify(TOKENIZER_JSON) })).status).toBe(200);
  const put = await api('/v1/models/words/versions/1/processing', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [TEXT_STEP], post: { output: 'logits', argmax: true } }),
  });
  expect(put.status).toBe(200);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

type Out = { name: string; datatype: string; shape: number[]; data: unknown[] };
type Answer = { outputs: Out[]; parameters: Record<string, unknown> };
const byName = (a: Answer) => Object.fromEntries(a.outputs.map((o) => [o.name, o]));
const argmax = (xs: ArrayLike<number>, at: number, n: number) => {
  let b = 0;
  for (let k = 1; k < n; k++) if (xs[at + k]! > xs[at + b]!) b = k;
  return b;
};

describe('image', () => {
  it('each patch of the model input set to mid-grey: the drop of the top class, as a heatmap [rows, H, W], equals the same occlusion run directly', async () => {
    const files = [await draw(RED_CIRCLE, 'png'), await draw(GREEN_RECT, 'jpeg')];
    const res = await post('/v2/models/cnn/infer', {
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], data: files.map((f) => f.toString('base64')) }],
      parameters: { explain: true, explainPatch: 5 },
    });
    expect(res.status).toBe(200);
    const a = (await res.json()) as Answer;
    const out = byName(a);
    expect(a.parameters).toMatchObject({ explain_method: 'patches', explain_patch: 5, explain_output: 'logits' });
    expect(out.attributions!.shape).toEqual([2, C, C]);
    expect(out.label!.shape).toEqual([2]);

    const per = 3 * C * C;
    const grey = new Float32Array(per);
    for (let c = 0; c < 3; c++) grey.fill((128 / 255 - CLASSIFIER_REF.mean[c]!) / CLASSIFIER_REF.std[c]!, c * C * C, (c + 1) * C * C);
    const logitsOf = async (x: Float32Array, n: number) => (await directRun(cnn, { image: { data: x, dims: [n, 3, C, C] } })).logits!;
    const base = await logitsOf(grey, 1);
    const attributions = out.attributions!.data as number[];
    let nonzero = 0;
    for (const [r, f] of files.entries()) {
      const x = await reference(f, CLASSIFIER_REF);
      const fx = await logitsOf(x, 1);
      const cls = argmax(fx, 0, 10);
      expect((a.parameters.explain_class as number[])[r]).toBe(cls);
      expect((a.parameters.explain_base as number[])[r]).toBeCloseTo(base[cls]!, 4);
      const across = Math.ceil(C / 5);
      const patches: Float32Array[] = [];
      for (let py = 0; py < across; py++)
        for (let px = 0; px < across; px++) {
          const o = x.slice();
          for (let c = 0; c < 3; c++)
            for (let y = py * 5; y < Math.min(C, py * 5 + 5); y++)
              for (let xx = px * 5; xx < Math.min(C, px * 5 + 5); xx++) o[c * C * C + y * C + xx] = grey[c * C * C + y * C + xx]!;
          patches.push(o);
        }
      const all = new Float32Array(patches.length * per);
      patches.forEach((o, k) => all.set(o, k * per));
      const occluded = await logitsOf(all, patches.length);
      for (let y = 0; y < C; y++)
        for (let xx = 0; xx < C; xx++) {
          const k = Math.floor(y / 5) * across + Math.floor(xx / 5);
          const want = fx[cls]! - occluded[k * 10 + cls]!;
          const got = attributions[r * C * C + y * C + xx]!;
          expect(Math.abs(got - want)).toBeLessThan(1e-4);
          if (Math.abs(want) > 1e-3) nonzero++;
        }
    }
    expect(nonzero).toBeGreaterThan(0);
  });

  it('a patch larger than the model input is a 400 saying so', async () => {
    const f = (await draw(RED_CIRCLE, 'png')).toString('base64');
    const big = await post('/v2/models/cnn/infer', {
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [f] }],
      parameters: { explain: true, explainPatch: 64 },
    });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: string }).error).toMatch(/explainPatch 64 is larger than the model's 16x16 input/);
  });
});

describe('audio', () => {
  it('16 runs of samples set to silence: the drop of the attributed score per run, spread over the samples [rows, length]', async () => {
    const sounds = [tone(LENGTH, 440, RATE), noise(LENGTH, 9)];
    const res = await post('/v2/models/ears/infer', {
      inputs: [{ name: 'wave', datatype: 'BYTES', shape: [2], data: sounds.map((s) => wav(s, 1, RATE, 'float32').toString('base64')) }],
      parameters: { explain: true, explainClass: 1 },
    });
    expect(res.status).toBe(200);
    const a = (await res.json()) as Answer;
    const out = byName(a);
    expect(a.parameters).toMatchObject({ explain_method: 'segments', explain_output: 'scores', explain_class: [1, 1], explain_base: [0, 0] });
    expect(out.attributions!.shape).toEqual([2, LENGTH]);
    const got = out.attributions!.data as number[];
    for (const [r, s] of sounds.entries()) {
      const fx = (await directRun(ears, { wave: { data: s, dims: [1, LENGTH] } })).scores!;
      for (let k = 0; k < 16; k++) {
        const [from, to] = [Math.floor((k * LENGTH) / 16), Math.floor(((k + 1) * LENGTH) / 16)];
        const o = s.slice();
        o.fill(0, from, to);
        const want = fx[1]! - (await directRun(ears, { wave: { data: o, dims: [1, LENGTH] } })).scores![1]!;
        for (let i = from; i < to; i++) expect(Math.abs(got[r * LENGTH + i]! - want)).toBeLessThan(1e-4);
      }
    }
  });
});

describe('text', () => {
  it('each token removed in turn (the row padded again): explain_tokens and the drop of the top class equal the same removal run directly', async () => {
    const texts = ['the cat sat on the mat', 'dogs run'];
    const res = await post('/v2/models/words/infer', {
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: texts }],
      parameters: { explain: true },
    });
    expect(res.status).toBe(200);
    const a = (await res.json()) as Answer;
    const out = byName(a);
    expect(a.parameters).toMatchObject({ explain_method: 'tokens', explain_output: 'logits' });
    const tok = new Tokenizer(TOKENIZER_JSON, {});
    const encoded: number[][] = texts.map((t) => tok.encode(t).ids.slice(0, MAX));
    encoded.forEach((ids) => {
      if (ids.length === MAX && ids[MAX - 1] !== 3) ids[MAX - 1] = 3;
    });
    const inner = encoded.map((ids) => ids.slice(1, -1));
    const width = Math.max(...inner.map((i) => i.length));
    expect(out.explain_tokens!.shape).toEqual([2, width]);
    expect(out.attributions!.shape).toEqual([2, width]);
    const s = await ort.InferenceSession.create(words);
    const run = async (ids: number[]) => {
      const grid = (f: (j: number) => number) => BigInt64Array.from(Array.from({ length: MAX }, (_, j) => BigInt(f(j))));
      const o = await s.run({
        input_ids: new ort.Tensor(
          'int64',
          grid((j) => ids[j] ?? 0),
          [1, MAX],
        ),
        attention_mask: new ort.Tensor(
          'int64',
          grid((j) => (j < ids.length ? 1 : 0)),
          [1, MAX],
        ),
        token_type_ids: new ort.Tensor(
          'int64',
          grid(() => 0),
          [1, MAX],
        ),
      });
      return o.logits!.data as Float32Array;
    };
    const base = await run([2, 3]);
    for (const [r, ids] of encoded.entries()) {
      const fx = await run(ids);
      const cls = argmax(fx, 0, fx.length);
      expect((a.parameters.explain_base as number[])[r]).toBeCloseTo(base[cls]!, 4);
      for (let k = 0; k < width; k++) {
        const name = (out.explain_tokens!.data as string[])[r * width + k];
        const got = (out.attributions!.data as number[])[r * width + k]!;
        if (k >= inner[r]!.length) {
          expect(name).toBe('');
          expect(got).toBe(0);
          continue;
        }
        expect(name).toBe(tok.id_to_token(inner[r]![k]!));
        const without = ids.filter((_: number, j: number) => j !== k + 1);
        expect(Math.abs(got - (fx[cls]! - (await run(without))[cls]!))).toBeLessThan(1e-4);
      }
    }
    await s.release();
  });
});

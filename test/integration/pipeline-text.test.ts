// Text into pipelines: a pipeline whose first step is a tokenizer-backed text model (its text field
// mapped to a pipeline input of BYTES [-1], sent as texts, not base64) and whose second step takes the
// first's logits equals tokenizing the texts here with the same library, running both models in
// onnxruntime directly (within 1e-4). A text step fed by nothing, or by a step's output, is a 400.
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildModel, floatTensor, node } from '../../workers/onnx/builder.ts';
import { DT } from '../../workers/onnx/proto.ts';
import { directRun } from '../fixtures/models.ts';
import { noise } from '../fixtures/sounds.ts';
import { TOKENIZER_JSON, textModel } from '../fixtures/texts.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const words = textModel();
const MAX = 8;
const head = buildModel({
  inputs: [{ name: 'x', elemType: DT.FLOAT, shape: ['n', 3] }],
  outputs: [{ name: 'y', elemType: DT.FLOAT, shape: ['n', 2] }],
  nodes: [node('MatMul', ['x', 'W'], ['y'])],
  initializers: [floatTensor('W', [3, 2], noise(6, 4, 1))],
});

let p: TestPlatform;
const api = (path: string, init?: RequestInit) => fetch(`${p.url}${path}`, init);
const postJson = (path: string, body: unknown) => api(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  for (const [name, m] of [
    ['words', words],
    ['head', head],
  ] as const)
    expect(
      (await api(`/v1/models/${name}/versions`, { method: 'POST', body: Buffer.from(m), headers: { 'content-type': 'application/octet-stream' } })).status,
    ).toBe(201);
  expect((await api('/v1/models/words/versions/1/processing/files/tokenizer.json', { method: 'PUT', body: JSON.stringify(TOKENIZER_JSON) })).status).toBe(200);
  const put = await api('/v1/models/words/versions/1/processing', {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ type: 'text', input: 'text', maxLength: MAX, attentionMask: 'attention_mask', tokenTypeIds: 'token_type_ids' }],
      post: { output: 'logits', argmax: true },
    }),
  });
  expect(put.status).toBe(200);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

/** The texts tokenized here (cut keeping [SEP], padded with 0) and run through both models directly. */
async function byHand(texts: string[]) {
  const tok = new Tokenizer(TOKENIZER_JSON, {});
  const rows = texts.map((t) => {
    const ids = tok.encode(t).ids;
    return ids.length > MAX ? [...ids.slice(0, MAX - 1), 3] : ids;
  });
  const grid = (f: (r: number[], j: number) => number) => BigInt64Array.from(rows.flatMap((r) => Array.from({ length: MAX }, (_, j) => BigInt(f(r, j)))));
  const s = await ort.InferenceSession.create(words);
  const dims = [rows.length, MAX];
  const logits = (
    await s.run({
      input_ids: new ort.Tensor(
        'int64',
        grid((r, j) => r[j] ?? 0),
        dims,
      ),
      attention_mask: new ort.Tensor(
        'int64',
        grid((r, j) => (j < r.length ? 1 : 0)),
        dims,
      ),
      token_type_ids: new ort.Tensor(
        'int64',
        grid(() => 0),
        dims,
      ),
    })
  ).logits!.data as Float32Array;
  await s.release();
  const y = (await directRun(head, { x: { data: logits, dims: [rows.length, 3] } })).y!;
  return { logits, y };
}

const PIPELINE = {
  inputs: [{ name: 'sentence', datatype: 'BYTES', shape: [-1] }],
  steps: [
    { name: 'read', model: 'words', inputs: { text: 'sentence' } },
    { name: 'decide', model: 'head', inputs: { x: 'read.logits' } },
  ],
  outputs: { logits: 'read.logits', label: 'read.label', y: 'decide.y' },
};

it('texts through a tokenizer step then a second model equal the same tokens and runs done here', async () => {
  const reg = await postJson('/v1/models/reader/pipelines', PIPELINE);
  expect(reg.status).toBe(201);
  const texts = ['the cat sat on the mat', 'hello world', 'the big red dog sat on a blue mat, the cats swim'];
  const res = await postJson('/v2/models/reader/infer', { inputs: [{ name: 'sentence', datatype: 'BYTES', shape: [3], data: texts }] });
  expect(res.status).toBe(200);
  const out = Object.fromEntries(((await res.json()) as { outputs: { name: string; data: unknown[] }[] }).outputs.map((o) => [o.name, o.data]));

  const { logits, y } = await byHand(texts);
  (out.logits as number[]).forEach((v, i) => expect(Math.abs(v - logits[i]!)).toBeLessThan(1e-4));
  (out.y as number[]).forEach((v, i) => expect(Math.abs(v - y[i]!)).toBeLessThan(1e-4));
  expect(out.y).toHaveLength(6);
  expect(out.label).toHaveLength(3);
});

it('a JSONL batch of {"id", "sentence": "..."} rows equals the same run by hand; a row without a text is one error line', async () => {
  const texts = ['hello world', 'the cat sat on the mat'];
  const body = texts.map((t, i) => JSON.stringify({ id: `t${i}`, sentence: t })).join('\n') + '\n{"id":"none","sentence":7}\n';
  const res = await api('/v1/batches?model=reader', { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
  expect(res.status, await res.clone().text()).toBe(202);
  const { id } = (await res.json()) as { id: string };
  await until(async () => ((await (await api(`/v1/batches/${id}`)).json()) as { status: string }).status === 'completed', `batch ${id}`, 60_000);
  const lines = (await (await api(`/v1/batches/${id}/output`)).text())
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; outputs: { logits: number[]; y: number[] } });
  expect(lines.map((l) => l.id)).toEqual(['t0', 't1']);
  const { logits, y } = await byHand(texts);
  lines.flatMap((l) => l.outputs.logits).forEach((v, i) => expect(Math.abs(v - logits[i]!)).toBeLessThan(1e-4));
  lines.flatMap((l) => l.outputs.y).forEach((v, i) => expect(Math.abs(v - y[i]!)).toBeLessThan(1e-4));
  const errors = (await (await api(`/v1/batches/${id}/errors`)).text()).split('\n').filter(Boolean);
  expect(errors).toHaveLength(1);
  expect(errors[0]).toContain('must be a text');
});

it('a text step fed by nothing, or by a step output, is refused naming it', async () => {
  const unfed = await postJson('/v1/models/bad/pipelines', {
    ...PIPELINE,
    steps: [{ name: 'read', model: 'words', inputs: {} }],
    outputs: { l: 'read.logits' },
  });
  expect(unfed.status).toBe(400);
  expect(((await unfed.json()) as { error: { message: string } }).error.message).toMatch(/text "text" is fed by nothing/);
  const fromStep = await postJson('/v1/models/bad/pipelines', {
    ...PIPELINE,
    steps: [
      { name: 'read', model: 'words', inputs: { text: 'sentence' } },
      { name: 'again', model: 'words', inputs: { text: 'read.label' } },
    ],
    outputs: { l: 'again.logits' },
  });
  expect(fromStep.status).toBe(400);
  expect(((await fromStep.json()) as { error: { message: string } }).error.message).toMatch(/texts come only from the pipeline's inputs of BYTES \[-1\]/);
});

// A transformer-like text model with a tokenizer.json stored with its version: texts online (:predict
// instances, /v2 BYTES) and in a JSONL batch give the outputs of a direct onnxruntime run of the
// tokens the same tokenizer library gives here, cut and padded by hand (BERT: [CLS] ... [SEP], [PAD] = 0),
// within 1e-4. A bad tokenizer file, a step naming no stored file and a text over maxLength with
// truncation off are 4xx naming the cause; a row whose text is no string is one error row.
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TOKENIZER_JSON, textModel } from '../fixtures/texts.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const MAX = 8;
const model = textModel();
const tokenizerFile = Buffer.from(JSON.stringify(TOKENIZER_JSON));
const TEXTS = ['The cat sat on the mat.', 'Dogs run!', 'hello zebra world', 'the big red dog sat on a blue mat, the cats swim'];
const LABELS = ['neg', 'neu', 'pos'];
const STEP = { type: 'text', input: 'text', maxLength: MAX, attentionMask: 'attention_mask', tokenTypeIds: 'token_type_ids' };

let p: TestPlatform;
const api = (path: string, init?: RequestInit) => fetch(`${p.url}${path}`, init);
const putJson = (path: string, body: unknown) => api(path, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  const up = await api('/v1/models/words/versions', { method: 'POST', body: Buffer.from(model), headers: { 'content-type': 'application/octet-stream' } });
  expect(up.status).toBe(201);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

/** The rows' tokens as the test computes them: encoded by the library, cut keeping [SEP], padded with 0 to `width` (or the longest). */
function tokens(texts: string[], width?: number) {
  const tok = new Tokenizer(TOKENIZER_JSON, {});
  const rows = texts.map((t) => {
    const e = tok.encode(t, { return_token_type_ids: true });
    let ids = e.ids;
    if (ids.length > MAX) ids = [...ids.slice(0, MAX - 1), 3];
    return ids;
  });
  const w = width ?? Math.max(...rows.map((r) => r.length));
  const grid = (f: (r: number[], j: number) => number) => BigInt64Array.from(rows.flatMap((r) => Array.from({ length: w }, (_, j) => BigInt(f(r, j)))));
  return {
    dims: [rows.length, w],
    ids: grid((r, j) => (j < r.length ? r[j]! : 0)),
    mask: grid((r, j) => (j < r.length ? 1 : 0)),
    types: grid(() => 0),
  };
}

async function direct(texts: string[], width?: number): Promise<Float32Array> {
  const t = tokens(texts, width);
  const s = await ort.InferenceSession.create(model);
  const out = await s.run({
    input_ids: new ort.Tensor('int64', t.ids, t.dims),
    attention_mask: new ort.Tensor('int64', t.mask, t.dims),
    token_type_ids: new ort.Tensor('int64', t.types, t.dims),
  });
  await s.release();
  return out.logits!.data as Float32Array;
}

const close = (got: number[], want: ArrayLike<number>) => {
  expect(got).toHaveLength(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThan(1e-4));
};

it('the tokenizer file is stored with the version before a text step may name it; a file that is no tokenizer is a 400', async () => {
  const early = await putJson('/v1/models/words/versions/1/processing', { inputs: [STEP] });
  expect(early.status).toBe(400);
  expect(((await early.json()) as { error: { message: string } }).error.message).toMatch(/tokenizer "tokenizer.json" is not a file of this version/);

  const bad = await api('/v1/models/words/versions/1/processing/files/tokenizer.json', { method: 'PUT', body: '{"model": {"type": "Nope"}}' });
  expect(bad.status).toBe(400);
  expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/tokenizer/);

  const put = await api('/v1/models/words/versions/1/processing/files/tokenizer.json', { method: 'PUT', body: tokenizerFile });
  expect(put.status).toBe(200);
  expect(((await put.json()) as { files: Record<string, { bytes: number }> }).files['tokenizer.json']!.bytes).toBe(tokenizerFile.length);
  const back = await api('/v1/models/words/versions/1/processing/files/tokenizer.json');
  expect(Buffer.from(await back.arrayBuffer()).equals(tokenizerFile)).toBe(true);

  const wrongType = await putJson('/v1/models/words/versions/1/processing', { inputs: [{ ...STEP, dtype: 'int32' }] });
  expect(wrongType.status).toBe(400);
  const unfed = await putJson('/v1/models/words/versions/1/processing', { inputs: [{ type: 'text', maxLength: MAX }] });
  expect(unfed.status).toBe(400);
  expect(((await unfed.json()) as { error: { message: string } }).error.message).toMatch(/attention_mask/);

  const ok = await putJson('/v1/models/words/versions/1/processing', {
    inputs: [STEP],
    post: { output: 'logits', softmax: true, argmax: true },
    labels: LABELS,
  });
  expect(ok.status).toBe(200);
  const rec = (await ok.json()) as { processing: { inputs: { sha256?: string }[] } };
  expect(rec.processing.inputs[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);

  const inUse = await api('/v1/models/words/versions/1/processing/files/tokenizer.json', { method: 'DELETE' });
  expect(inUse.status).toBe(409);
}, 60_000);

it(':predict with {"text"} instances equals a direct run of the same tokens (padded to maxLength), long texts cut keeping [SEP]', async () => {
  const want = await direct(TEXTS, MAX);
  const res = await api('/v1/models/words:predict', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: TEXTS.map((text) => ({ text })) }),
  });
  expect(res.status).toBe(200);
  const { predictions } = (await res.json()) as { predictions: { logits: number[]; probabilities: number[]; label: string }[] };
  expect(predictions).toHaveLength(TEXTS.length);
  predictions.forEach((pr, i) => {
    close(pr.logits, want.subarray(i * 3, (i + 1) * 3));
    const best = pr.logits.indexOf(Math.max(...pr.logits));
    expect(pr.label).toBe(LABELS[best]);
  });
  // The long text really was cut: its tokens without the cut differ.
  expect(new Tokenizer(TOKENIZER_JSON, {}).encode(TEXTS[3]!).ids.length).toBeGreaterThan(MAX);
}, 60_000);

it('/v2 BYTES texts equal the direct run; padding "longest" pads to the longest text of the request', async () => {
  const want = await direct(TEXTS.slice(0, 3), MAX);
  const res = await api('/v2/models/words/infer', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [3], data: TEXTS.slice(0, 3) }] }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { outputs: { name: string; shape: number[]; data: unknown[] }[] };
  const out = Object.fromEntries(body.outputs.map((o) => [o.name, o]));
  close(out.logits!.data as number[], want);
  expect(out.label!.shape).toEqual([3]);

  // A number is no text.
  const notText = await api('/v2/models/words/infer', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [5] }] }),
  });
  expect(notText.status).toBe(400);

  expect((await putJson('/v1/models/words/versions/1/processing', { inputs: [{ ...STEP, padding: 'longest' }] })).status).toBe(200);
  const longest = await direct(TEXTS.slice(0, 2));
  const res2 = await api('/v1/models/words:predict', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: TEXTS.slice(0, 2) }),
  });
  expect(res2.status).toBe(200);
  const { predictions } = (await res2.json()) as { predictions: { logits: number[] }[] };
  predictions.forEach((pr, i) => close(pr.logits, longest.subarray(i * 3, (i + 1) * 3)));
}, 60_000);

it('truncation off: a text over maxLength is a 400 naming it', async () => {
  expect((await putJson('/v1/models/words/versions/1/processing', { inputs: [{ ...STEP, truncation: false }] })).status).toBe(200);
  const res = await api('/v1/models/words:predict', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [{ text: TEXTS[1] }, { text: TEXTS[3] }] }),
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/text 1: the text is \d+ tokens, over maxLength 8/);
}, 60_000);

it('a JSONL batch of {"id", "text"} rows equals the direct run; a row without a text is one error row', async () => {
  expect((await putJson('/v1/models/words/versions/1/processing', { inputs: [STEP] })).status).toBe(200);
  const lines = [...TEXTS.map((text, i) => ({ id: `t${i}`, text })), { id: 'bad', text: { b64: 'AAAA' } }];
  const res = await api('/v1/batches?model=words', {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: lines.map((l) => JSON.stringify(l)).join('\n') + '\n',
  });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const done = await until(
    async () => {
      const v = (await (await api(`/v1/batches/${id}`)).json()) as { status: string };
      return ['completed', 'failed'].includes(v.status) ? v : null;
    },
    `batch ${id}`,
    120_000,
  );
  expect(done.status).toBe('completed');
  const read = async (kind: string) =>
    (await (await api(`/v1/batches/${id}/${kind}`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; outputs?: { logits: number[]; label: string }; error?: { message: string } });
  const out = await read('output');
  expect(out.map((o) => o.id)).toEqual(TEXTS.map((_, i) => `t${i}`));
  const want = await direct(TEXTS, MAX);
  out.forEach((o, i) => close(o.outputs!.logits, want.subarray(i * 3, (i + 1) * 3)));
  const errors = await read('errors');
  expect(errors.map((e) => e.id)).toEqual(['bad']);
  expect(errors[0]!.error!.message).toMatch(/"text" must be a text/);
}, 180_000);

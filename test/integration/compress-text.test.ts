// int8 quantization of a text classifier (StringNormalizer -> Tokenizer -> TfIdfVectorizer -> MLP
// head -> Softmax + string label): the string front end passes through untouched, the head's
// MatMuls are quantized, sample inputs are sentences from the model's vocabulary, static
// calibration feeds the dataset's strings, and the report's accuracy on a text dataset works; fp16
// converts the head only.
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { decodeModel } from '../../workers/onnx/proto.ts';
import { TEXT_ROWS, textClassifier, textSentences } from '../fixtures/text-models.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let events: QueueEvents;
let ds: string;
const model = textClassifier({ padVocabulary: 3000, hidden: 64 });
const rows = [...TEXT_ROWS, ...textSentences(400)];
const FRONT = ['StringNormalizer', 'Tokenizer', 'TfIdfVectorizer'];

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  expect((await uploadModel(p.url, 'topics', model)).status).toBe(201);
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const csv = ['id,text,label', ...rows.map((r, i) => `${i},${q(r.text)},${r.label}`)].join('\n') + '\n';
  const res = await fetch(`${p.url}/v1/datasets?format=csv&name=topics`, { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
  expect(res.status, await res.clone().text()).toBe(201);
  ds = (await res.json()).id;
});
afterAll(async () => {
  await events?.close();
  await p?.stop();
});

async function compress(body: unknown) {
  const res = await postJson(`${p.url}/v1/jobs/compress`, body);
  expect(res.status, await res.clone().text()).toBe(202);
  const { id } = await res.json();
  const job = (await p.deps.queues.queue('compress').getJob(id))!;
  return job.waitUntilFinished(events, 180_000);
}
const download = async (name: string, v: number) => new Uint8Array(await (await fetch(`${p.url}/v1/models/${name}/versions/${v}/onnx`)).arrayBuffer());

/** The string front end's nodes, as written: op, domain, inputs, attributes (fp16 renames the float output). */
function front(bytes: Uint8Array) {
  return decodeModel(bytes)
    .graph!.node!.filter((n) => FRONT.includes(n.opType!))
    .map((n) => JSON.stringify({ op: n.opType, domain: n.domain, input: n.input, attribute: n.attribute }));
}

const ODD = ['', '   ', 'Crème brûlée au café ☕', '東京 の ホテル', '🍕🍕 pizza 🍕', 'ÉCOLE DE FÚTBOL ⚽'];
async function labels(name: string, texts: string[]) {
  const r = await postJson(`${p.url}/v2/models/${name}/infer`, { inputs: [{ name: 'text', datatype: 'BYTES', shape: [texts.length], data: texts }] });
  expect(r.status).toBe(200);
  return (await r.json()).outputs.find((o: { name: string }) => o.name === 'label').data as string[];
}

describe('compressing a text model', () => {
  it('quantize-int8: the head is int8, the string front end untouched; accuracy on the text dataset in the report', async () => {
    const { model: m, report } = await compress({ model: 'topics@1', method: 'quantize-int8', dataset: ds, target: 'label', registerAs: 'topics-int8' });
    expect(m).toEqual({ name: 'topics-int8', version: 1 });
    expect(report.details.quantized.map((q: { op: string }) => q.op)).toEqual(['MatMul', 'MatMul']);
    expect(report.details.quantized.map((q: { node: string }) => q.node).some((n: string) => FRONT.some((f) => n.includes(f)))).toBe(false);
    expect(report.bytesAfter / report.bytesBefore).toBeLessThan(0.4);
    // Sample inputs are sentences from the model's own vocabulary.
    expect(report.sampleInputs.text).toMatch(/sentences of 3 to 12 words from the model's vocabulary \(\d+ TfIdfVectorizer words\)/);
    expect(report.argmaxAgreement).toBeGreaterThanOrEqual(0.9);
    expect(report.dataset).toMatchObject({ id: ds, rows: rows.length, features: ['text'], target: 'label', accuracyBefore: 1 });
    expect(report.dataset.accuracyAfter).toBeGreaterThanOrEqual(0.97);
    expect(report.dataset.argmaxAgreement).toBeGreaterThanOrEqual(0.97);
    const bytes = await download('topics-int8', 1);
    expect(await onnxCheck(bytes)).toBeNull();
    expect(front(bytes)).toEqual(front(model));
    const ops = decodeModel(bytes).graph!.node!.map((n) => n.opType);
    expect(ops).toContain('MatMulInteger');
    expect(ops).not.toContain('MatMul');
    // Served like its parent, strings of every kind included.
    const texts = [...TEXT_ROWS.map((r) => r.text), ...ODD];
    const [before, after] = [await labels('topics', texts), await labels('topics-int8', texts)];
    expect(after.slice(0, TEXT_ROWS.length)).toEqual(TEXT_ROWS.map((r) => r.label));
    expect(after.length).toBe(texts.length);
    expect(after.slice(0, TEXT_ROWS.length)).toEqual(before.slice(0, TEXT_ROWS.length));
    // Odd strings (empty, blank, unknown words: near-uniform probabilities) are scored too.
    after.slice(TEXT_ROWS.length).forEach((l) => expect(['sport', 'food', 'tech', 'travel']).toContain(l));
  });

  it('quantize-int8-static calibrates on the dataset strings, or on generated sentences without a dataset', async () => {
    const withData = await compress({ model: 'topics@1', method: 'quantize-int8-static', dataset: ds, target: 'label', registerAs: 'topics-qdq' });
    expect(withData.report.details.calibration).toMatchObject({ source: 'dataset', rows: 256 });
    expect(withData.report.dataset.accuracyAfter).toBeGreaterThanOrEqual(0.97);
    expect(front(await download('topics-qdq', 1))).toEqual(front(model));
    const generated = await compress({ model: 'topics@1', method: 'quantize-int8-static', registerAs: 'topics-qdq' });
    expect(generated.report.details.calibration).toMatchObject({ source: 'generated' });
    expect(generated.report.argmaxAgreement).toBeGreaterThanOrEqual(0.9);
    expect(await onnxCheck(await download('topics-qdq', 2))).toBeNull();
  });

  it('fp16 keeps the string front end and TfIdfVectorizer in float32, the head in float16', async () => {
    const { report } = await compress({ model: 'topics@1', method: 'fp16', dataset: ds, target: 'label', registerAs: 'topics-fp16' });
    expect(report.maxAbsDiff).toBeLessThan(1e-2);
    expect(report.dataset.accuracyAfter).toBe(1);
    expect(front(await download('topics-fp16', 1))).toEqual(front(model));
  });

  it('refuses what does not apply to a text model with a reason', async () => {
    // A numeric feature for a string input, and distillation (its student is an MLP over numbers).
    const res = await postJson(`${p.url}/v1/jobs/compress`, { model: 'topics@1', method: 'distill', options: { hidden: [8] }, dataset: ds, target: 'label' });
    expect(res.status).toBe(202);
    const job = (await p.deps.queues.queue('compress').getJob((await res.json()).id))!;
    await expect(job.waitUntilFinished(events, 60_000)).rejects.toThrow(/distill: input .{0,2}text.{0,2} takes strings/);
    const numbers = await postJson(`${p.url}/v1/jobs/compress`, { model: 'topics@1', method: 'quantize-int8', dataset: ds, features: ['id'], target: 'label' });
    expect(numbers.status).toBe(400);
    expect((await numbers.json()).error.message).toMatch(/features\[0\]: column "id" holds numbers; the model's input "text" takes strings/);
  });
});

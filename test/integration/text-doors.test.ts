// Strings through every door, on a real text classifier (StringNormalizer -> Tokenizer ->
// TfIdfVectorizer -> MLP head -> Softmax + a string label): /v2 REST BYTES inputs and outputs (the
// fast path, the coalescer and the engine's dynamic batcher concatenating strings), gRPC
// bytes_contents and length-prefixed raw contents, batch JSONL, CSV (quoted fields with commas and
// newlines) and Parquet string columns with string outputs in JSONL, CSV and Parquet downloads, and
// OpenAI-compatible batches of /v2 BYTES bodies.
// Answers equal direct onnxruntime runs; non-ASCII and empty strings are scored; numbers in BYTES data are a 400.
import { status } from '@grpc/grpc-js';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { encodeBytes } from '../../producer/grpc/contents.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { directRunAny } from '../fixtures/protocol-models.ts';
import { TEXT_ROWS, textClassifier } from '../fixtures/text-models.ts';
import { codeOf, inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let server: RunningGrpcServer;
let c: InferenceClient;
const model = textClassifier();
const model2 = textClassifier({ rank: 2 });

/** Accents, CJK, emoji, empty and blank strings, a string with quotes, commas and a newline. */
const ODD = [
  '',
  '   ',
  'Crème brûlée au café ☕',
  '東京 の ホテル',
  '🍕🍕 pizza 🍕',
  'say "hi", then\nleave, ok',
  'ÉCOLE DE FÚTBOL ⚽',
  '\u0000nul and \\ backslash',
];
const TEXTS = [...TEXT_ROWS.map((r) => r.text), ...ODD];

async function expected(texts: string[], m = model, rank = 1) {
  const r = await directRunAny(m, { text: new ort.Tensor('string', texts, rank === 2 ? [texts.length, 1] : [texts.length]) });
  return { label: r.label!.data as string[], probabilities: Array.from(r.probabilities!.data as Float32Array) };
}
const close = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-5);

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  server = await startGrpcServer(p.deps, {
    port: 0,
    host: '127.0.0.1',
    keys: KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }),
  });
  c = inferenceClient(`127.0.0.1:${server.port}`);
  for (const [name, bytes] of [
    ['textcls', model],
    ['textcls2', model2],
  ] as const) {
    const r = await uploadModel(p.url, name, bytes);
    expect(r.status, `${name}: ${await r.clone().text()}`).toBe(201);
  }
});
afterAll(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
});

const infer = (name: string, body: unknown) => postJson(`${p.url}/v2/models/${name}/infer`, body);

describe('REST /v2 BYTES', () => {
  it('model metadata shows BYTES for the string input and output', async () => {
    const meta = await (await fetch(`${p.url}/v2/models/textcls`)).json();
    expect(meta.inputs).toEqual([{ name: 'text', datatype: 'BYTES', shape: [-1] }]);
    expect(meta.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 4] },
    ]);
    expect((await (await fetch(`${p.url}/v2/models/textcls2/versions/1`)).json()).inputs).toEqual([{ name: 'text', datatype: 'BYTES', shape: [-1, 1] }]);
  });

  it('scores strings (non-ASCII and empty too) and answers string outputs as BYTES, equal to onnxruntime', async () => {
    const want = await expected(TEXTS);
    const res = await infer('textcls', { id: 'q1', inputs: [{ name: 'text', datatype: 'BYTES', shape: [TEXTS.length], data: TEXTS }] });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = await res.json();
    expect(body.id).toBe('q1');
    const label = body.outputs.find((o: { name: string }) => o.name === 'label');
    expect(label).toEqual({ name: 'label', datatype: 'BYTES', shape: [TEXTS.length], data: want.label });
    expect(label.data.slice(0, TEXT_ROWS.length)).toEqual(TEXT_ROWS.map((r) => r.label));
    const probs = body.outputs.find((o: { name: string }) => o.name === 'probabilities');
    expect(probs.shape).toEqual([TEXTS.length, 4]);
    expect(close(probs.data, want.probabilities)).toBe(true);
    // Requests of empty strings only (the tokenizer finds no token in the whole batch) are scored too.
    for (const only of [[''], ['', '   ']]) {
      const r = await infer('textcls', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [only.length], data: only }] });
      expect(r.status).toBe(200);
      expect((await r.json()).outputs[0].data).toEqual((await expected(only)).label);
    }
    // Through versions/{v} and with `outputs` selecting the string output alone.
    const only = await (
      await postJson(`${p.url}/v2/models/textcls/versions/1/infer`, {
        inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['寿司'] }],
        outputs: [{ name: 'label' }],
      })
    ).json();
    expect(only.outputs).toEqual([{ name: 'label', datatype: 'BYTES', shape: [1], data: ['food'] }]);
  });

  it('takes a [N, 1] string input flat or nested', async () => {
    const texts = ['A spicy pizza', '', 'フライト ✈️ flight'];
    const want = await expected(texts, model2, 2);
    for (const data of [texts, texts.map((t) => [t])]) {
      const res = await infer('textcls2', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [3, 1], data }] });
      expect(res.status, await res.clone().text()).toBe(200);
      expect((await res.json()).outputs[0]).toEqual({ name: 'label', datatype: 'BYTES', shape: [3], data: want.label });
    }
  });

  it('dynamically batches concurrent single-sentence requests, each answered with its own label', async () => {
    const all = [...TEXTS, ...TEXTS, ...TEXTS];
    const want = await expected(all);
    const got = await Promise.all(
      all.map(async (t) => {
        const r = await infer('textcls', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: [t] }] });
        expect(r.status).toBe(200);
        return (await r.json()).outputs[0].data[0];
      }),
    );
    expect(got).toEqual(want.label);
  });

  it('answers 400 naming the input for numbers in BYTES data, a wrong element count or datatype; null is a missing value ("")', async () => {
    const bad = async (inp: object, re: RegExp, name = 'textcls') => {
      const r = await infer(name, { inputs: [{ name: 'text', datatype: 'BYTES', ...inp }] });
      expect(r.status).toBe(400);
      const e = await r.json();
      expect(e.error).toMatch(re);
      return e;
    };
    await bad({ shape: [2], data: [1, 2] }, /inputs\[0\] "text"\.data\[0\] must be a string for datatype BYTES, got 1/);
    await bad({ shape: [2], data: ['ok', 2.5] }, /inputs\[0\] "text"\.data\[1\] must be a string/);
    const withNull = await infer('textcls', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['ok', null] }] });
    expect(withNull.status).toBe(200);
    const withEmpty = await infer('textcls', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: ['ok', ''] }] });
    expect((await withNull.json()).outputs).toEqual((await withEmpty.json()).outputs);
    await bad({ shape: [1], data: [true] }, /"text"\.data\[0\] must be a string/);
    await bad({ shape: [3], data: ['a', 'b'] }, /"text" has 2 elements but shape \[3\] needs 3/);
    await bad({ shape: [2, 1], data: [['a'], [3]] }, /"text"\.data\[1\] must be a string/, 'textcls2');
    await bad({ shape: [2, 1], data: [['a', 'b'], ['c']] }, /"text"\.data\[0\] has 2 elements/, 'textcls2');
    const r = await infer('textcls', { inputs: [{ name: 'text', datatype: 'FP32', shape: [1], data: [1] }] });
    expect(r.status).toBe(400);
    expect((await r.json()).error).toMatch(/datatype FP32 does not match the model's BYTES/);
    // The platform still answers afterwards.
    expect((await infer('textcls', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['goal'] }] })).status).toBe(200);
  });
});

const encodeStrings = (words: string[]) => encodeBytes(words);
const decodeStrings = (b: Buffer) => {
  const out: string[] = [];
  for (let o = 0; o < b.length;) {
    const n = b.readUInt32LE(o);
    out.push(b.toString('utf8', o + 4, o + 4 + n));
    o += 4 + n;
  }
  return out;
};
const asF32 = (b: Buffer) => Array.from(new Float32Array(new Uint8Array(b).buffer));

describe('gRPC BYTES', () => {
  it('takes strings as length-prefixed raw contents and as bytes_contents; answers the string label raw, as Triton does', async () => {
    const want = await expected(TEXTS);
    const raw = await c.call('ModelInfer', {
      model_name: 'textcls',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [TEXTS.length] }],
      raw_input_contents: [encodeStrings(TEXTS)],
    });
    expect(raw.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [TEXTS.length] },
      { name: 'probabilities', datatype: 'FP32', shape: [TEXTS.length, 4] },
    ]);
    expect(decodeStrings(raw.raw_output_contents[0])).toEqual(want.label);
    expect(close(asF32(raw.raw_output_contents[1]), want.probabilities)).toBe(true);
    const typed = await c.call('ModelInfer', {
      model_name: 'textcls2',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [TEXTS.length, 1], contents: { bytes_contents: TEXTS.map((w) => Buffer.from(w)) } }],
      outputs: [{ name: 'label' }],
    });
    expect(typed.outputs).toEqual([{ name: 'label', datatype: 'BYTES', shape: [TEXTS.length] }]);
    expect(decodeStrings(typed.raw_output_contents[0])).toEqual(want.label);
  });

  it('refuses numbers for a BYTES input and a wrong element count with INVALID_ARGUMENT naming the input', async () => {
    const call = (inp: object, extra: object = {}) =>
      c.call('ModelInfer', { model_name: 'textcls', inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], ...inp }], ...extra });
    const numbers = await call({ contents: { fp32_contents: [1, 2] } }).catch((e) => e);
    expect(numbers.code).toBe(status.INVALID_ARGUMENT);
    expect(numbers.details).toMatch(/inputs\[0\] "text"\.contents: datatype BYTES takes bytes_contents, the request has fp32_contents/);
    const ints = await call({ contents: { int64_contents: [1, 2] } }).catch((e) => e);
    expect(ints.details).toMatch(/"text".*bytes_contents, the request has int64_contents/);
    const short = await call({ contents: { bytes_contents: [Buffer.from('one')] } }).catch((e) => e);
    expect(short.code).toBe(status.INVALID_ARGUMENT);
    expect(short.details).toMatch(/"text" has 1 elements but shape \[2\] needs 2/);
    expect(await codeOf(call({}, { raw_input_contents: [encodeStrings(['a', 'b', 'c'])] }))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(call({}, { raw_input_contents: [encodeStrings(['goal', ''])] }))).toBe('ok');
  });
});

const PARQUET = 'application/vnd.apache.parquet';
const submit = (body: string | Uint8Array, query: string, type = 'application/x-ndjson') =>
  fetch(`${p.url}/v1/batches?${query}`, { method: 'POST', body: typeof body === 'string' ? body : Buffer.from(body), headers: { 'content-type': type } });
async function waitDone(id: string) {
  return until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    120_000,
  );
}
const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

/** Output lines equal a direct run: row numbers, ids, string labels and probabilities. */
async function expectOutput(id: string, texts: string[], ids: (i: number) => unknown) {
  const want = await expected(texts);
  const out = jsonLines(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text());
  expect(out).toHaveLength(texts.length);
  out.forEach((o, i) => {
    expect([o.row, o.id]).toEqual([i, ids(i)]);
    expect(o.outputs.label).toEqual([want.label[i]]);
    expect(close(o.outputs.probabilities, want.probabilities.slice(i * 4, i * 4 + 4))).toBe(true);
  });
  return want;
}

/** Many rows: the labelled sentences and odd strings over and over, enough for several chunks. */
const MANY = Array.from({ length: 1200 }, (_, i) => `${TEXTS[i % TEXTS.length]}${i % 3 ? '' : ` #${i}`}`);

describe('batches of strings', () => {
  it('JSONL rows {"text": ...} (and ["..."] for a [N,1] input), string outputs in JSONL, CSV and Parquet downloads', async () => {
    const body = MANY.map((t, i) => JSON.stringify({ id: `r${i}`, text: t })).join('\n');
    const res = await submit(body, 'model=textcls&chunkRows=500');
    expect(res.status, await res.clone().text()).toBe(202);
    const done = await waitDone((await res.json()).id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: MANY.length, completed: MANY.length, failed: 0 } });
    const want = await expectOutput(done.id, MANY, (i) => `r${i}`);
    // CSV download: the label column holds the string (quoted where it must be).
    const csv = await (await fetch(`${p.url}/v1/batches/${done.id}/output?format=csv`)).text();
    const { parse } = await import('csv-parse/sync');
    const recs = parse(csv, { columns: true }) as Record<string, string>[];
    // A one-value output is one column named as the output; this uploaded model records no classes,
    // so its probabilities are numbered.
    expect(Object.keys(recs[0]!)).toEqual(['row', 'id', 'label', 'probabilities_0', 'probabilities_1', 'probabilities_2', 'probabilities_3']);
    expect(recs.map((r) => r.label)).toEqual(want.label);
    // Parquet download: the label is a string column (a scalar, not a one-element list).
    const pq = await parquetReadObjects({ file: await (await fetch(`${p.url}/v1/batches/${done.id}/output?format=parquet`)).arrayBuffer() });
    expect(pq.map((r) => r.label)).toEqual(want.label);
    expect(pq[5]!.id).toBe('r5');
    // The [N, 1] model takes a string or a one-element list per row.
    const res2 = await submit(['{"text": "pizza"}', '{"text": ["goal"]}', '{"text": 5}', '{"text": ["a", "b"]}'].join('\n'), 'model=textcls2');
    const done2 = await waitDone((await res2.json()).id);
    expect(done2.requestCounts).toEqual({ total: 4, completed: 2, failed: 2 });
    expect(jsonLines(await (await fetch(`${p.url}/v1/batches/${done2.id}/output`)).text()).map((o) => o.outputs.label[0])).toEqual(['food', 'sport']);
    const errs = jsonLines(await (await fetch(`${p.url}/v1/batches/${done2.id}/errors`)).text());
    expect(errs.map((e) => e.row)).toEqual([2, 3]);
    expect(errs[0].error.message).toMatch(/input "text".*must be a string/);
  });

  it('JSONL rows with a number are error rows; null or missing text is a missing value (""), scored', async () => {
    const body = ['{"id": 1, "text": "tennis match"}', '{"id": 2, "text": 42}', '{"id": 3, "text": null}', '{"id": 4}', '{"id": 5, "text": ""}'].join('\n');
    const done = await waitDone((await (await submit(body, 'model=textcls')).json()).id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: 5, completed: 4, failed: 1 } });
    const out = jsonLines(await (await fetch(`${p.url}/v1/batches/${done.id}/output`)).text());
    const empty = (await expected(['']))!.label[0];
    expect(out.map((o) => [o.id, o.outputs.label[0]])).toEqual([
      [1, 'sport'],
      [3, empty],
      [4, empty],
      [5, empty],
    ]);
    const errs = jsonLines(await (await fetch(`${p.url}/v1/batches/${done.id}/errors`)).text());
    expect(errs.map((e) => e.id)).toEqual([2]);
    expect(errs[0].error.message).toMatch(/"text".*must be a string/);
  });

  it('CSV: the column named as the string input feeds it (quoted commas, quotes and newlines), other columns are ignored', async () => {
    const q = (s: string) => (/[",\n\r]/.test(s) || s.trim() !== s ? `"${s.replace(/"/g, '""')}"` : s);
    const texts = MANY.filter((t) => !t.includes('\u0000'));
    const body = ['id,text,label', ...texts.map((t, i) => `c${i},${q(t)},whatever`)].join('\r\n') + '\r\n';
    const res = await submit(body, 'model=textcls&format=csv&chunkRows=300', 'text/csv');
    expect(res.status, await res.clone().text()).toBe(202);
    const done = await waitDone((await res.json()).id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: texts.length, completed: texts.length, failed: 0 } });
    await expectOutput(done.id, texts, (i) => `c${i}`);
    // Without a column named as the input: a 400 at submit naming it.
    const bad = await submit('id,body\n1,hello\n', 'model=textcls&format=csv', 'text/csv');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/column "text"/);
  });

  it('Parquet: a string column named as the input feeds it, row groups as chunks', async () => {
    const n = MANY.length;
    const file = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Array.from({ length: n }, (_, i) => i), type: 'INT32' },
        { name: 'text', data: MANY, type: 'STRING' },
      ],
      rowGroupSize: 400,
    });
    const res = await submit(new Uint8Array(file), 'model=textcls', PARQUET);
    expect(res.status, await res.clone().text()).toBe(202);
    const done = await waitDone((await res.json()).id);
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    await expectOutput(done.id, MANY, (i) => i);
    // A null cell is a missing value, scored as an empty string is.
    const holes = parquetWriteBuffer({ columnData: [{ name: 'text', data: ['goal', null, '', 'pizza'], type: 'STRING' }] });
    const h = await waitDone((await (await submit(new Uint8Array(holes), 'model=textcls', PARQUET)).json()).id);
    expect(h.requestCounts).toEqual({ total: 4, completed: 4, failed: 0 });
    const empty = (await expected(['']))!.label[0];
    expect(jsonLines(await (await fetch(`${p.url}/v1/batches/${h.id}/output`)).text()).map((o) => [o.row, o.outputs.label[0]])).toEqual([
      [0, 'sport'],
      [1, empty],
      [2, empty],
      [3, 'food'],
    ]);
    // A numeric column for the string input: 400 naming it.
    const wrong = parquetWriteBuffer({ columnData: [{ name: 'text', data: [1, 2, 3], type: 'INT32' }] });
    const r = await submit(new Uint8Array(wrong), 'model=textcls', PARQUET);
    expect(r.status).toBe(400);
    expect((await r.json()).error.message).toMatch(/column "text"/);
  });
});

describe('OpenAI-compatible batches of strings', () => {
  it('runs /v2 BYTES bodies through the official SDK: string outputs in the output file, numbers in the error file', async () => {
    const { default: OpenAI, toFile } = await import('openai');
    const client = new OpenAI({ baseURL: `${p.url}/openai/v1`, apiKey: 'unused-when-open' });
    const url = '/v2/models/textcls/infer';
    const line = (id: string, data: unknown[]) => ({
      custom_id: id,
      method: 'POST',
      url,
      body: { inputs: [{ name: 'text', datatype: 'BYTES', shape: [data.length], data }] },
    });
    const lines = [line('odd', ODD), line('num', [1, 2]), line('one', ['寿司'])];
    const file = await client.files.create({
      file: await toFile(Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n'), 'in.jsonl'),
      purpose: 'batch',
    });
    const b = await client.batches.create({ input_file_id: file.id, endpoint: url as never, completion_window: '24h' });
    const done = await until(
      async () => {
        const v = await client.batches.retrieve(b.id);
        return ['completed', 'failed', 'expired', 'cancelled'].includes(v.status) ? v : null;
      },
      'OpenAI batch',
      60_000,
    );
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 3, completed: 2, failed: 1 } });
    const out = (await (await client.files.content(done.output_file_id!)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out.map((o) => o.custom_id)).toEqual(['odd', 'one']);
    const label = (o: { response: { body: { outputs: { name: string; data: unknown[] }[] } } }) => o.response.body.outputs.find((t) => t.name === 'label');
    expect(label(out[0])).toMatchObject({ datatype: 'BYTES', shape: [ODD.length], data: (await expected(ODD)).label });
    expect(label(out[1])!.data).toEqual(['food']);
    const errs = (await (await client.files.content(done.error_file_id!)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(errs[0]).toMatchObject({ custom_id: 'num', response: { status_code: 400 } });
    expect(errs[0].response.body.error.message).toMatch(/"text".*must be a string/);
  });
});

// Text models on the platform: a bag-of-words classifier (StringNormalizer -> com.microsoft Tokenizer
// -> TfIdfVectorizer -> MatMul -> Softmax) explained over /v2 by occlusion (tokens and their
// attributions, equal to the drops computed by hand), and its text input watched for drift as the
// Jensen-Shannon distance of word frequencies, with a reference from its first scored rows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withoutToken } from '../../core/text-tokens.ts';
import { SENTIMENT_WEIGHTS, sentimentModel } from '../fixtures/sentiment-model.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'admin-key-0123456789': { tenant: 'acme', scopes: ['admin'] },
  'infer-key-0123456789': { tenant: 'acme', scopes: ['infer'] },
  'read-key-01234567890': { tenant: 'acme', scopes: ['read'] },
};
const auth = (key: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${key}` });
const ADMIN = 'admin-key-0123456789';
const INFER = 'infer-key-0123456789';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({
    workers: 1,
    env: { MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_DRIFT_SAMPLE: '1', MODELQ_DRIFT_WINDOW: '100000', MODELQ_DRIFT_REFERENCE_ROWS: '400' },
  });
  for (const [name, bytes] of [
    ['sentiment', sentimentModel('n')],
    ['sentiment2d', sentimentModel('n1')],
    ['watched', sentimentModel('n')],
    ['drifting', sentimentModel('n')],
  ] as const) {
    const up = await fetch(`${p.url}/v1/models/${name}/versions`, {
      method: 'POST',
      body: Buffer.from(bytes),
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/octet-stream' },
    });
    expect(up.status).toBe(201);
  }
});
afterAll(async () => {
  await p?.stop();
});

function prob(text: string, c: number): number {
  const logits = [0.1, -0.1];
  for (const w of text.toLowerCase().split(' ')) if (SENTIMENT_WEIGHTS[w]) SENTIMENT_WEIGHTS[w]!.forEach((v, k) => (logits[k]! += v));
  const e = logits.map(Math.exp);
  return e[c]! / (e[0]! + e[1]!);
}

const TEXTS = ['The movie was good', 'awful plot and bad acting', 'great'];
const infer = (name: string, texts: string[], parameters?: Record<string, unknown>, key = INFER, shape = [texts.length]) =>
  fetch(`${p.url}/v2/models/${name}/infer`, {
    method: 'POST',
    headers: auth(key),
    body: JSON.stringify({ ...(parameters ? { parameters } : {}), inputs: [{ name: 'text', datatype: 'BYTES', shape, data: texts }] }),
  });

describe('text models', () => {
  it('explains each word by occlusion over /v2: tokens, attributions (the drop when removed), base and class', async () => {
    const res = await infer('sentiment', TEXTS, { explain: true });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(200);
    const out = (name: string) => body.outputs.find((o: { name: string }) => o.name === name);
    expect(out('explain_tokens')).toMatchObject({ datatype: 'BYTES', shape: [3, 5] });
    expect(out('attributions')).toMatchObject({ datatype: 'FP32', shape: [3, 5] });
    expect(body.parameters).toMatchObject({ explain_method: 'occlusion', explain_output: 'probabilities', explain_class: [1, 0, 1] });
    const tokens = out('explain_tokens').data as string[];
    const attr = out('attributions').data as number[];
    expect(tokens.slice(0, 5)).toEqual(['The', 'movie', 'was', 'good', '']);
    TEXTS.forEach((text, n) => {
      const c = body.parameters.explain_class[n];
      expect(body.parameters.explain_base[n]).toBeCloseTo(prob('', c), 5);
      for (let k = 0; k < 5; k++) {
        const t = tokens[n * 5 + k]!;
        if (!t) expect(attr[n * 5 + k]).toBe(0);
        else expect(attr[n * 5 + k]).toBeCloseTo(prob(text, c) - prob(withoutToken(text, t), c), 5);
      }
    });
    expect(attr.slice(0, 3)).toEqual([0, 0, 0]); // "The movie was": zero weights
    // [N, 1] text input: the same answer; a fixed class; the infer scope
    const flat = await (await infer('sentiment2d', TEXTS, { explain: true }, INFER, [3, 1])).json();
    expect(flat.outputs.find((o: { name: string }) => o.name === 'attributions').data).toEqual(attr);
    const fixed = await (await infer('sentiment', TEXTS, { explain: true, explainClass: 0 })).json();
    expect(fixed.parameters.explain_class).toEqual([0, 0, 0]);
    expect((await infer('sentiment', TEXTS, { explain: true }, 'read-key-01234567890')).status).toBe(403);
    const bad = await infer('sentiment', TEXTS, { explain: true, explainClass: 5 });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/explainClass 5 is out of range/);
  });

  it('explains a JSONL batch of a text model row by row, as the online request of that row', async () => {
    const rows = [...TEXTS, 'good good GOOD bad', ''];
    const sub = await fetch(`${p.url}/v1/batches?model=sentiment&explain=true&chunkRows=2`, {
      method: 'POST',
      body: rows.map((text, i) => JSON.stringify({ id: i, text })).join('\n'),
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-ndjson' },
    });
    const accepted = await sub.json();
    expect(sub.status, JSON.stringify(accepted)).toBe(202);
    await until(async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${accepted.id}`, { headers: auth(ADMIN) })).json();
      return v.status === 'completed' ? v : null;
    }, 'the explained text batch');
    const out = await fetch(`${p.url}/v1/batches/${accepted.id}/output`, { headers: auth(ADMIN) });
    const lines = (await out.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: number; outputs: Record<string, (string | number)[]> });
    expect(lines.map((l) => l.id)).toEqual([0, 1, 2, 3, 4]);
    for (const [n, text] of rows.entries()) {
      const online = await (await infer('sentiment', [text], { explain: true })).json();
      const o = (name: string) => online.outputs.find((x: { name: string }) => x.name === name).data as (string | number)[];
      const line = lines[n]!.outputs;
      // Each line: the row's own distinct words (no padding) and one attribution per word.
      expect(line.explain_tokens).toEqual(o('explain_tokens').filter((t) => t !== ''));
      expect(line.attributions!.length).toBe(line.explain_tokens!.length);
      line.attributions!.forEach((a, k) => expect(a).toBeCloseTo(o('attributions')[k] as number, 5));
      expect(line.explain_base![0]).toBeCloseTo(online.parameters.explain_base[0], 5);
      expect(line.explain_class).toEqual(online.parameters.explain_class);
    }
    expect(lines[3]!.outputs.explain_tokens).toEqual(['good', 'bad']);
    expect(lines[4]!.outputs.explain_tokens).toEqual([]);
    // CSV and Parquet have no column shape for a list of words per row: refused, naming JSONL.
    const csv = await fetch(`${p.url}/v1/batches/${accepted.id}/output?format=csv`, { headers: auth(ADMIN) });
    expect(csv.status).toBe(400);
    expect((await csv.json()).error.message).toMatch(/explains text.*format=jsonl/);
    const bad = await fetch(`${p.url}/v1/batches?model=sentiment&explain=true&explainClass=5`, {
      method: 'POST',
      body: JSON.stringify({ text: 'good' }),
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-ndjson' },
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/explainClass 5 is out of range/);
  });

  it('builds a text reference from the first scored rows and reports word-frequency drift (Jensen-Shannon)', async () => {
    const WORDS_A = ['the', 'movie', 'was', 'good', 'great', 'plot', 'fun', 'story'];
    const WORDS_B = ['awful', 'bad', 'boring', 'plot', 'terrible', 'mess'];
    let seed = 1;
    const u = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    const sentences = (words: string[], n: number) =>
      Array.from({ length: n }, () => Array.from({ length: 3 + Math.floor(u() * 5) }, () => words[Math.floor(u() * words.length)]).join(' '));
    for (const name of ['watched', 'drifting']) {
      for (let i = 0; i < 4; i++) expect((await infer(name, sentences(WORDS_A, 100))).status).toBe(200); // the first 400 rows: the reference
      const v = await until(async () => {
        const r = await (await fetch(`${p.url}/v1/models/${name}/versions/1`, { headers: auth(ADMIN) })).json();
        return r.explain?.reference ? r : null;
      }, `${name}'s reference`);
      expect(v.explain.reference).toMatchObject({ rows: 400, features: 1 });
    }
    for (let i = 0; i < 10; i++) {
      expect((await infer('watched', sentences(WORDS_A, 100))).status).toBe(200);
      expect((await infer('drifting', sentences(WORDS_B, 100))).status).toBe(200);
    }
    const report = (name: string) =>
      until(async () => {
        const d = await (await fetch(`${p.url}/v1/models/${name}/versions/1/drift`, { headers: auth('read-key-01234567890') })).json();
        return d.rows >= 1000 ? d : null;
      }, `${name}'s window`);
    const same = await report('watched');
    expect(same.features).toEqual([expect.objectContaining({ name: 'text', kind: 'text', metric: 'js', level: 'ok' })]);
    const moved = await report('drifting');
    expect(moved.features).toEqual([expect.objectContaining({ name: 'text', kind: 'text', metric: 'js', level: 'alert' })]);
    expect(moved.features[0].score).toBeGreaterThan(0.5);
    expect((await fetch(`${p.url}/v1/models/drifting/versions/1/drift`, { headers: auth(INFER) })).status).toBe(403); // reports need read
    // Batch rows of text are drawn into the window too (every row here: MODELQ_DRIFT_SAMPLE=1).
    const body = sentences(WORDS_B, 300)
      .map((text) => JSON.stringify({ text }))
      .join('\n');
    const sub = await fetch(`${p.url}/v1/batches?model=watched&chunkRows=100`, {
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/x-ndjson' },
    });
    expect(sub.status).toBe(202);
    const { id } = await sub.json();
    await until(async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`, { headers: auth(ADMIN) })).json();
      return v.status === 'completed' ? v : null;
    }, 'the text batch');
    const after = await (await fetch(`${p.url}/v1/models/watched/versions/1/drift`, { headers: auth(ADMIN) })).json();
    expect(after.rows).toBe(same.rows + 300);
    expect(after.features[0].score).toBeGreaterThan(same.features[0].score);
  });
});

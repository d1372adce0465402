// Token attributions by occlusion against a real text model (StringNormalizer -> com.microsoft
// Tokenizer -> TfIdfVectorizer -> MatMul -> Softmax) run by onnxruntime in the test process: exact
// drops for known weights, 0 for words the model ignores, the same result whatever the run size.
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { distinctWords, occlusion, occlusionBytes, occlusionEvaluations, withoutToken, type EvaluateText } from '../../../../workers/explain/occlusion.ts';
import { SENTIMENT_WEIGHTS, sentimentModel } from '../../../fixtures/sentiment-model.ts';

const sessions: ort.InferenceSession[] = [];
async function evaluator(shape: 'n' | 'n1'): Promise<EvaluateText & { runs: number }> {
  const s = await ort.InferenceSession.create(sentimentModel(shape));
  sessions.push(s);
  const f = (async (texts: string[]) => {
    f.runs++;
    const out = (await s.run({ text: new ort.Tensor('string', texts, shape === 'n' ? [texts.length] : [texts.length, 1]) })).probabilities!;
    return { scores: out.data as Float32Array, classes: out.dims[1]! };
  }) as EvaluateText & { runs: number };
  f.runs = 0;
  return f;
}
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
});

/** The fixture's probability of class c for a text, computed by hand from its weights. */
function prob(text: string, c: number): number {
  const logits = [0.1, -0.1];
  for (const w of text.toLowerCase().split(' ')) if (SENTIMENT_WEIGHTS[w]) SENTIMENT_WEIGHTS[w]!.forEach((v, k) => (logits[k]! += v));
  const e = logits.map(Math.exp);
  return e[c]! / (e[0]! + e[1]!);
}

const TEXTS = ['The movie was good', 'awful plot and bad acting', 'great great movie', ''];

describe('occlusion', () => {
  it('finds distinct words (case-insensitively, any script) and removes every occurrence of one', () => {
    expect(distinctWords("The cat, the DOG's bowl; café 42 a")).toEqual(['The', 'cat', 'DOG', 'bowl', 'café', '42']);
    expect(withoutToken('great movie, GREAT plot', 'great')).toBe('movie, plot');
    expect(occlusionEvaluations(['ab cd ab', 'ef', 'x'])).toBe(1 + 3 + 2 + 1); // one-letter words are no tokens
  });

  it("attributes each word the drop of the predicted class's probability when it is removed", async () => {
    const ev = await evaluator('n');
    const rows = await occlusion(TEXTS, ev, { runRows: 1000 });
    expect(ev.runs).toBe(1);
    expect(rows.map((r) => r.class)).toEqual([1, 0, 1, 0]);
    rows.forEach((r, i) => {
      expect(r.base).toBeCloseTo(prob('', r.class), 5);
      expect(r.value).toBeCloseTo(prob(TEXTS[i]!, r.class), 5);
      r.tokens.forEach((t, k) => expect(r.attributions[k]).toBeCloseTo(prob(TEXTS[i]!, r.class) - prob(withoutToken(TEXTS[i]!, t), r.class), 5));
    });
    const [a, b] = rows;
    expect(a!.tokens).toEqual(['The', 'movie', 'was', 'good']);
    expect(a!.attributions.slice(0, 3)).toEqual([0, 0, 0]); // words with zero weights: exactly nothing changes
    expect(a!.attributions[3]).toBeGreaterThan(0.3);
    const by = Object.fromEntries(b!.tokens.map((t, k) => [t, b!.attributions[k]!]));
    expect(by.and).toBe(0); // not in the vocabulary
    expect(by.acting).toBe(0);
    expect(by.awful!).toBeGreaterThan(by.bad!);
    expect(by.bad!).toBeGreaterThan(by.plot!);
    expect(by.plot!).toBeGreaterThan(0);
    expect(rows[3]!.tokens).toEqual([]);
  });

  it('gives the same numbers for an [N, 1] input, small runs and a fixed class; refuses a class out of range', async () => {
    const one = await occlusion(TEXTS, await evaluator('n'), { runRows: 1000 });
    const ev = await evaluator('n1');
    const small = await occlusion(TEXTS, ev, { runRows: 3 });
    expect(ev.runs).toBe(Math.ceil(occlusionEvaluations(TEXTS) / 3));
    expect(small).toEqual(one);
    const fixed = await occlusion(TEXTS, ev, { runRows: 1000, classIndex: 1 });
    expect(fixed.map((r) => r.class)).toEqual([1, 1, 1, 1]);
    expect(fixed[1]!.attributions[0]).toBeLessThan(0); // "awful" lowers class 1
    await expect(occlusion(TEXTS, ev, { runRows: 1000, classIndex: 2 })).rejects.toThrow(/explainClass 2 is out of range/);
  });
});

/** `count` distinct words of `length` letters each (no digits: one token each). */
function longWords(count: number, length: number): string {
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    let w = '';
    for (let k = i; w.length < 6; k = Math.floor(k / 26)) w += String.fromCharCode(97 + (k % 26));
    words.push(w + 'x'.repeat(length - w.length));
  }
  return words.join(' ');
}

describe('occlusion bounded in bytes (#25 case 4)', () => {
  it('refuses 3 MB of 3,000 distinct long words before building or running anything, naming the limit', async () => {
    const text = longWords(3000, 1000);
    expect(text.length).toBeGreaterThan(3_000_000);
    expect(occlusionBytes([text])).toBeGreaterThan(9e9); // every word's copy of the whole text
    let calls = 0;
    const ev: EvaluateText = async (texts) => {
      calls++;
      return { scores: new Float32Array(texts.length), classes: 1 };
    };
    await expect(occlusion([text], ev, { runRows: 1024, maxBytes: 2 ** 30 })).rejects.toThrow(/limit is 1073741824 bytes \(MODELQ_EXPLAIN_MAX_BYTES\)/);
    expect(calls).toBe(0);
  });

  it('builds the occluded copies lazily in runs of at most runBytes, with the same attributions as one big run', async () => {
    const texts = [longWords(200, 500), 'short text here'];
    const runBytes = 300_000;
    let most = 0;
    let runs = 0;
    // A stub model: the score is the text's length, so a word's attribution is the length it takes up.
    const ev: EvaluateText = async (batch) => {
      runs++;
      most = Math.max(
        most,
        batch.reduce((n, t) => n + Buffer.byteLength(t), 0),
      );
      return { scores: Float32Array.from(batch, (t) => t.length / 1e6), classes: 1 };
    };
    const r = await occlusion(texts, ev, { runRows: 100_000, runBytes, maxBytes: 2 ** 30 });
    expect(most).toBeLessThanOrEqual(runBytes);
    expect(runs).toBeGreaterThan((200 * 100_000) / runBytes);
    expect(r[0]!.tokens).toHaveLength(200);
    r[0]!.tokens.forEach((t, k) => expect(r[0]!.attributions[k]).toBeCloseTo((texts[0]!.length - withoutToken(texts[0]!, t).length) / 1e6, 6));
    expect(r[1]!.attributions).toHaveLength(3);
    const whole = await occlusion(texts, ev, { runRows: 100_000, runBytes: 2 ** 30 });
    expect(whole).toEqual(r);
  });
});

// Token attributions by occlusion against a real text model (StringNormalizer -> com.microsoft
// Tokenizer -> TfIdfVectorizer -> MatMul -> Softmax) run by onnxruntime in the test process: exact
// drops for known weights, 0 for words the model ignores, the same result whatever the run size.
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { occlusion, occlusionEvaluations, textTokens, withoutToken, type EvaluateText } from '../../../../workers/explain/occlusion.ts';
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
    expect(textTokens("The cat, the DOG's bowl; café 42")).toEqual(['The', 'cat', "DOG's", 'bowl', 'café', '42']);
    expect(withoutToken('great movie, GREAT plot', 'great')).toBe('movie, plot');
    expect(occlusionEvaluations(['a b a', 'c'])).toBe(1 + 3 + 2);
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

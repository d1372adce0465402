// Token attributions for text models by occlusion: for each distinct token of a row, the row is
// re-run with every occurrence of that token removed, and the token's attribution is the drop of
// the attributed class's score, f(x) - f(x without the token). Every occluded text of a request
// (plus the rows themselves and the empty text, the base) runs in a few large runs. Deterministic:
// no sampling. Unlike Shapley values, the attributions need not sum to f(x) - base (interactions
// between tokens are counted in neither or both).

import { textTokens, withoutToken } from '../../core/text-tokens.ts';

export { occlusionEvaluations, textTokens, withoutToken } from '../../core/text-tokens.ts';

/** Evaluates the model on texts; returns [texts, classes] scores. */
export type EvaluateText = (texts: string[]) => Promise<{ scores: Float32Array; classes: number }>;

export interface OcclusionRow {
  tokens: string[];
  attributions: number[];
  /** The empty text's score of the attributed class. */
  base: number;
  value: number;
  class: number;
}

export async function occlusion(texts: string[], evaluate: EvaluateText, o: { classIndex?: number; runRows: number }): Promise<OcclusionRow[]> {
  const tokens = texts.map(textTokens);
  // Order: the empty text, the rows, then each row's occluded texts.
  const all: string[] = ['', ...texts];
  for (let r = 0; r < texts.length; r++) for (const t of tokens[r]!) all.push(withoutToken(texts[r]!, t));
  const parts: { scores: Float32Array; classes: number }[] = [];
  for (let at = 0; at < all.length; at += Math.max(1, o.runRows)) parts.push(await evaluate(all.slice(at, at + Math.max(1, o.runRows))));
  const C = parts[0]!.classes;
  const score = (i: number, c: number) => {
    const run = Math.floor(i / Math.max(1, o.runRows));
    return parts[run]!.scores[(i - run * Math.max(1, o.runRows)) * C + c]!;
  };
  if (o.classIndex !== undefined && o.classIndex >= C)
    throw new RangeError(`explainClass ${o.classIndex} is out of range: the output has ${C} column${C > 1 ? 's' : ''}`);
  let next = 1 + texts.length;
  return texts.map((_, r) => {
    let c = o.classIndex ?? 0;
    if (o.classIndex === undefined) for (let k = 1; k < C; k++) if (score(1 + r, k) > score(1 + r, c)) c = k;
    const value = score(1 + r, c);
    const attributions = tokens[r]!.map(() => value - score(next++, c));
    return { tokens: tokens[r]!, attributions, base: score(0, c), value, class: c };
  });
}

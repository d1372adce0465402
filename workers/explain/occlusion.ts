// Token attributions for text models by occlusion: for each distinct token of a row, the row is
// re-run with every occurrence of that token removed, and the token's attribution is the drop of
// the attributed class's score, f(x) - f(x without the token). Deterministic: no sampling. Unlike
// Shapley values, the attributions need not sum to f(x) - base (interactions between tokens are
// counted in neither or both).
// Bounded in bytes: the whole request's occluded text is checked against `maxBytes` before any is
// built, and the occluded copies are built lazily, one run at a time, each run holding at most
// `runRows` texts and `runBytes` bytes (one long row's copies never all sit in memory at once).

import { EXPLAIN_RUN_BYTES } from '../../core/jobs/explain.ts';
import { distinctWords, occlusionBytes, withoutToken } from '../../core/text-tokens.ts';

export { distinctWords, occlusionBytes, occlusionEvaluations, withoutToken } from '../../core/text-tokens.ts';

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

export interface OcclusionOptions {
  classIndex?: number;
  /** Most texts per evaluation. */
  runRows: number;
  /** Most bytes of text per evaluation (a single longer text runs alone); default EXPLAIN_RUN_BYTES. */
  runBytes?: number;
  /** Most bytes of text the whole explanation may feed the model (occlusionBytes); a RangeError above. */
  maxBytes?: number;
}

const bytesOf = (t: string) => Buffer.byteLength(t, 'utf8');

/** Evaluates a stream of texts in runs bounded in count and bytes; `take` gets each run's scores in order. */
async function inRuns(
  texts: Iterable<string>,
  evaluate: EvaluateText,
  o: { runRows: number; runBytes: number },
  take: (scores: Float32Array, classes: number, count: number) => void,
): Promise<void> {
  let run: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (!run.length) return;
    const r = await evaluate(run);
    take(r.scores, r.classes, run.length);
    run = [];
    bytes = 0;
  };
  for (const t of texts) {
    const b = bytesOf(t);
    if (run.length && (run.length >= o.runRows || bytes + b > o.runBytes)) await flush();
    run.push(t);
    bytes += b;
  }
  await flush();
}

export async function occlusion(texts: string[], evaluate: EvaluateText, o: OcclusionOptions): Promise<OcclusionRow[]> {
  if (o.maxBytes !== undefined) {
    const cost = occlusionBytes(texts);
    if (cost > o.maxBytes)
      throw new RangeError(
        `explaining these texts by occlusion feeds the model ${cost} bytes of text (each row once per distinct word); the limit is ${o.maxBytes} bytes (MODELQ_EXPLAIN_MAX_BYTES): send shorter texts or fewer rows`,
      );
  }
  const runs = { runRows: Math.max(1, o.runRows), runBytes: Math.max(1, o.runBytes ?? EXPLAIN_RUN_BYTES) };
  const out: OcclusionRow[] = texts.map((t) => ({ tokens: distinctWords(t), attributions: [], base: 0, value: 0, class: 0 }));
  // In order: the empty text (the base), the rows, then each row's occluded copies, built as the runs
  // need them. A row's score (and so its class) always arrives before its copies' scores.
  function* all(): Generator<string> {
    yield '';
    yield* texts;
    for (let r = 0; r < texts.length; r++) for (const t of out[r]!.tokens) yield withoutToken(texts[r]!, t);
  }
  let empty = new Float32Array(0);
  let at = 0;
  let row = 0;
  await inRuns(all(), evaluate, runs, (scores, C, count) => {
    if (o.classIndex !== undefined && o.classIndex >= C)
      throw new RangeError(`explainClass ${o.classIndex} is out of range: the output has ${C} column${C > 1 ? 's' : ''}`);
    for (let i = 0; i < count; i++, at++) {
      const y = scores.subarray(i * C, (i + 1) * C);
      if (at === 0) empty = y.slice();
      else if (at <= texts.length) {
        let c = o.classIndex ?? 0;
        if (o.classIndex === undefined) for (let k = 1; k < C; k++) if (y[k]! > y[c]!) c = k;
        Object.assign(out[at - 1]!, { class: c, value: y[c]!, base: empty[c]! });
      } else {
        while (out[row]!.attributions.length === out[row]!.tokens.length) row++;
        const x = out[row]!;
        x.attributions.push(x.value - y[x.class]!);
      }
    }
  });
  return out;
}

// How text is read, shared by the dataset profiler (token counts) and the trainer (TF-IDF): the same
// lowercasing and tokenization as the exported ONNX graph, so the trainer's features are the graph's.
//
// The graph lowercases with StringNormalizer (LOWER, locale C.UTF-8), which onnxruntime runs per code
// point through the C library's towlower: one code point maps to one (U+0130 "İ" becomes "i", where
// JavaScript's toLowerCase gives "i" + U+0307), and a NUL ends the string (it is handed over as a C
// string). Measured over every code point with onnxruntime-node 1.30 on Debian's glibc: besides
// those two, only 55 code points of scripts added to Unicode after glibc's tables (Latin Extended-D
// additions, Garay, ...) differ from toLowerCase; the trainer checks the export on its validation
// rows, so such a difference in a dataset would fail the job rather than go unnoticed.
//
// Tokens: maximal runs of letters, digits and underscore (`[\p{L}\p{N}_]+`, RE2 in the graph's
// com.microsoft Tokenizer) of at least 2 code points (Tokenizer's mincharnum counts code points),
// scikit-learn's default token_pattern (\b\w\w+\b) in Unicode terms.

/** The Tokenizer's regular expression (RE2 syntax, also valid in JavaScript with the `u` flag). */
export const TOKEN_PATTERN = '[\\p{L}\\p{N}_]+';
/** Shortest token kept, in code points. */
export const MIN_TOKEN_CHARS = 2;
/** StringNormalizer's locale: present on every glibc since 2.35 (and Debian's long before); en_US.UTF-8 often is not. */
export const TEXT_LOCALE = 'C.UTF-8';

const TOKEN_RE = new RegExp(TOKEN_PATTERN, 'gu');
const ASCII_UPPER = /[A-Z]/g;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

/** Lowercase one code point as towlower does: to a single code point, else unchanged. */
function lowerCodePoint(ch: string): string {
  if (ch === '\u0130') return 'i';
  const l = ch.toLowerCase();
  return l.length === ch.length || [...l].length === 1 ? l : ch;
}

/** StringNormalizer(LOWER, C.UTF-8) as onnxruntime applies it. */
export function lowerLikeGraph(s: string): string {
  const nul = s.indexOf('\0');
  if (nul >= 0) s = s.slice(0, nul);
  if (!NON_ASCII.test(s)) return s.replace(ASCII_UPPER, (c) => c.toLowerCase());
  let out = '';
  for (const ch of s) out += lowerCodePoint(ch);
  return out;
}

/** Whether a match of TOKEN_PATTERN is long enough to be a token: counted in code points, not UTF-16 units (a surrogate pair is one character to the Tokenizer). */
export const isToken = (t: string): boolean => t.length >= 2 * MIN_TOKEN_CHARS || [...t].length >= MIN_TOKEN_CHARS;

/** The tokens of already lowercased text, in order. */
export function tokenize(lowered: string): string[] {
  const out: string[] = [];
  for (const m of lowered.matchAll(TOKEN_RE)) if (isToken(m[0])) out.push(m[0]);
  return out;
}

/** Lowercase and tokenize a raw value (null or missing reads as the empty string). */
export const textTokens = (v: unknown): string[] => (v === null || v === undefined ? [] : tokenize(lowerLikeGraph(String(v))));

/** Word n-grams from `min` to `max` tokens, joined by a space (as scikit-learn names them). */
export function ngrams(tokens: string[], min: number, max: number): string[] {
  const out: string[] = [];
  for (let n = min; n <= max; n++) for (let i = 0; i + n <= tokens.length; i++) out.push(n === 1 ? tokens[i]! : tokens.slice(i, i + n).join(' '));
  return out;
}

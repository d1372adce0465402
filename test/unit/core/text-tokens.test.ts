// The words explanations take out of a text (core/text-tokens.ts) are the tokens the text models and
// drift count (core/text.ts): one length rule, in code points, for both.
import { describe, expect, it } from 'vitest';
import { lowerLikeGraph, textTokens } from '../../../core/text.ts';
import { distinctWords, withoutToken } from '../../../core/text-tokens.ts';

describe('distinct words and tokens', () => {
  it('keep the same tokens: a one-code-point run is no word, an astral pair of one code point neither, two code points are', () => {
    const text = 'A cat, a CAT and 𝒳 or 𝒳𝒳 x9 é';
    expect(textTokens(text)).toEqual(['cat', 'cat', 'and', 'or', '𝒳𝒳', 'x9']);
    // First spelling kept, compared lower-cased: the same words as the tokens, once each.
    expect(distinctWords(text)).toEqual(['cat', 'and', 'or', '𝒳𝒳', 'x9']);
    expect(distinctWords(text).map(lowerLikeGraph)).toEqual([...new Set(textTokens(text))]);
    expect(withoutToken(text, 'CAT')).toBe('A , a and 𝒳 or 𝒳𝒳 x9 é');
  });
});

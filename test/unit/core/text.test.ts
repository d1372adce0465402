// The trainer's lowercasing and tokenization (core/text.ts) against what onnxruntime does in the
// exported graph: StringNormalizer (LOWER, C.UTF-8) over every Unicode code point, and the
// com.microsoft Tokenizer over strings of many scripts.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { lowerLikeGraph, MIN_TOKEN_CHARS, ngrams, TEXT_LOCALE, tokenize, TOKEN_PATTERN } from '../../../core/text.ts';
import { buildModel, node } from '../../../workers/onnx/builder.ts';
import { DT } from '../../../workers/onnx/proto.ts';

const stringModel = (n: ReturnType<typeof node>, outShape: (string | number)[]) =>
  buildModel({
    inputs: [{ name: 'x', elemType: DT.STRING, shape: ['N'] }],
    outputs: [{ name: 'y', elemType: DT.STRING, shape: outShape }],
    nodes: [n],
    domains: [{ domain: 'com.microsoft', version: 1 }],
  });

describe('text as the graph reads it', () => {
  it('lowercases every code point as StringNormalizer(LOWER, C.UTF-8) does, but for scripts newer than the C library', async () => {
    const s = await ort.InferenceSession.create(
      stringModel(node('StringNormalizer', ['x'], ['y'], { case_change_action: 'LOWER', locale: TEXT_LOCALE }), ['N']),
    );
    const xs: string[] = [];
    for (let c = 0; c < 0x110000; c++) if (c < 0xd800 || c > 0xdfff) xs.push(String.fromCodePoint(c));
    const ys = (await s.run({ x: new ort.Tensor('string', xs, [xs.length]) })).y!.data as string[];
    const differ = xs.filter((x, i) => lowerLikeGraph(x) !== ys[i]).map((x) => x.codePointAt(0)!);
    // Case pairs added to Unicode after the C library's tables (Latin Extended-D additions, Garay, ...)
    // may differ by machine; every script before U+1C80 (Latin, Greek, Cyrillic, Armenian, Georgian, ...) must not.
    expect(differ.filter((c) => c < 0x1c80)).toEqual([]);
    expect(differ.length).toBeLessThan(100);
    // Whole strings too: mixed scripts, a NUL (the C string ends there), the dotted capital I.
    const words = ['ÀÉÎÕÜ Çà', 'ΑΒΓ ΣΟΦΙΑ', 'МОСКВА', 'İSTANBUL', 'ǅ ǈ ǋ', 'ＡＢＣ', 'ab\u0000CD', 'Straße', '日本語', '😀 X'];
    const out = (await s.run({ x: new ort.Tensor('string', words, [words.length]) })).y!.data as string[];
    expect(words.map(lowerLikeGraph)).toEqual(out);
  });

  it('tokenizes as the com.microsoft Tokenizer with the same pattern', async () => {
    const s = await ort.InferenceSession.create(
      stringModel(
        node('Tokenizer', ['x'], ['y'], { mark: 0, mincharnum: MIN_TOKEN_CHARS, pad_value: '#', tokenexp: TOKEN_PATTERN }, undefined, 'com.microsoft'),
        ['N', 'T'],
      ),
    );
    const texts = [
      'hello, world! a b c d2 x_y __ 3.14 e-mail',
      'café naïve résumé cafe\u0301',
      '日本語のテキスト 中文 한국어 текст ελληνικά עברית العربية हिन्दी',
      '😀 emoji🎮game 𝐀𝐁𝐂 𝐀 ab',
      '',
      '  \t\n ',
    ];
    for (const t of texts) {
      const out = await s.run({ x: new ort.Tensor('string', [t], [1]) });
      const got = (out.y!.data as string[]).filter((x) => x !== '#');
      expect(tokenize(t), JSON.stringify(t)).toEqual(got);
    }
  });

  it('makes word n-grams joined by a space', () => {
    expect(ngrams(['a', 'b', 'c'], 1, 2)).toEqual(['a', 'b', 'c', 'a b', 'b c']);
    expect(ngrams([], 1, 2)).toEqual([]);
  });
});

// The line reader of OpenAI batch validation: byte ranges exact across read boundaries, linear in a
// line's length, and a line past the limit refused where it is found, naming the limit.
import { describe, expect, it } from 'vitest';
import { addLine, LineTooLongError, linesOf, type LineRange } from '../../../../workers/inference/openai-validate.ts';

async function* pieces(text: string, size: number): AsyncGenerator<Buffer> {
  const b = Buffer.from(text);
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
const all = async (it: AsyncIterable<{ text: string; start: number; end: number }>) => {
  const out = [];
  for await (const l of it) out.push(l);
  return out;
};

describe('linesOf', () => {
  it('yields every line with its byte range, whatever the read size', async () => {
    const text = 'a\n{"é":1}\n\nlonger line here\nlast';
    for (const size of [1, 2, 3, 7, 64]) {
      const lines = await all(linesOf(pieces(text, size)));
      expect(lines.map((l) => l.text)).toEqual(['a', '{"é":1}', '', 'longer line here', 'last']);
      for (const l of lines) expect(Buffer.from(text).subarray(l.start, l.end).toString().replace(/\n$/, '')).toBe(l.text);
      expect(lines.at(-1)!.end).toBe(Buffer.byteLength(text));
    }
  });

  it('refuses a line past the limit, naming the line and the key, without reading the rest', async () => {
    let read = 0;
    async function* huge(): AsyncGenerator<Buffer> {
      yield Buffer.from('{"ok":1}\n');
      const block = Buffer.alloc(64 * 1024, 'x');
      for (let i = 0; i < 256; i++) {
        read += block.length; // 16 MiB in all
        yield block;
      }
      yield Buffer.from('\n');
    }
    const err = await all(linesOf(huge(), 1024 * 1024)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LineTooLongError);
    expect((err as Error).message).toBe('line 2 is longer than 1048576 bytes (MODELQ_OPENAI_MAX_LINE_BYTES)');
    expect(read).toBeLessThanOrEqual(1024 * 1024 + 64 * 1024);
  });

  it('a line exactly at the limit passes', async () => {
    const lines = await all(linesOf(pieces('x'.repeat(9) + '\n', 4), 10));
    expect(lines).toEqual([{ text: 'x'.repeat(9), start: 0, end: 10 }]);
  });
});

describe('chunk ranges', () => {
  it('a chunk ends at its line count or its byte size, whichever comes first; a long line is a chunk of its own', () => {
    const ranges: LineRange[] = [];
    const lines = [10, 10, 10, 100, 10, 10, 10, 10];
    let at = 0;
    for (const n of lines) {
      addLine(ranges, { start: at, end: at + n }, 3, 50);
      at += n;
    }
    expect(ranges.map((r) => [r.start, r.end, r.lines])).toEqual([
      [0, 30, 3],
      [30, 130, 1],
      [130, 160, 3],
      [160, 170, 1],
    ]);
  });
});

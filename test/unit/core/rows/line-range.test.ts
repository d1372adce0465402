// Byte ranges that tile an object yield each of its lines once, whatever the cut points (lines
// longer than a range, a newline exactly at a cut, no final newline, a CSV header skipped).
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { lineRange } from '../../../../core/rows/line-range.ts';

/** A reader over `text` that hands out bytes in small pieces, as a network stream does. */
const reader = (buf: Buffer, piece: number) => async (from: number, to: number) => {
  const parts: Buffer[] = [];
  for (let i = from; i < to; i += piece) parts.push(buf.subarray(i, Math.min(to, i + piece)));
  return Readable.from(parts);
};

async function tiled(buf: Buffer, cuts: number[], piece: number, skipHeader = false): Promise<string[]> {
  const out: string[] = [];
  const bounds = [0, ...cuts, buf.length];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const parts: Buffer[] = [];
    for await (const b of lineRange(reader(buf, piece), bounds[i]!, bounds[i + 1]!, buf.length, { skipHeader, maxRowBytes: 1 << 20 })) parts.push(b);
    out.push(Buffer.concat(parts).toString());
  }
  return out;
}

function seeded(seed: number) {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe('lineRange', () => {
  it('yields every line once across any tiling of the object', async () => {
    const random = seeded(7);
    for (let trial = 0; trial < 300; trial++) {
      const lines = Array.from({ length: 1 + Math.floor(random() * 12) }, (_, i) => `${i}:${'x'.repeat(Math.floor(random() * 30))}`);
      const text = lines.join('\n') + (random() < 0.5 ? '\n' : '');
      const buf = Buffer.from(text);
      const cuts = [...new Set(Array.from({ length: Math.floor(random() * 6) }, () => 1 + Math.floor(random() * (buf.length - 1))))].sort((a, b) => a - b);
      const pieces = await tiled(buf, cuts, 1 + Math.floor(random() * 9));
      expect(pieces.join('')).toBe(text);
      // Each range's bytes are whole lines: a range ends with a newline or at the end of the object.
      pieces.filter((p, i) => p && i < pieces.length - 1).forEach((p) => expect(p.endsWith('\n') || text.endsWith(p)).toBe(true));
      const header = await tiled(buf, cuts, 3, true);
      expect(header.join('')).toBe(text.slice(text.indexOf('\n') + 1 || text.length));
    }
  });

  it('gives a range inside one long line nothing, and the range where it starts all of it', async () => {
    const text = 'a\n' + 'b'.repeat(100) + '\nc\n';
    expect(await tiled(Buffer.from(text), [10, 20, 50], 4)).toEqual(['a\n' + 'b'.repeat(100) + '\n', '', '', 'c\n']);
  });

  it('stops a last line that runs past its range by more than maxRowBytes', async () => {
    const buf = Buffer.from('a\n' + 'b'.repeat(1000));
    const parts: Buffer[] = [];
    for await (const b of lineRange(reader(buf, 64), 0, 4, buf.length, { maxRowBytes: 100 })) parts.push(b);
    expect(Buffer.concat(parts).length).toBe(4 + 100 + 1);
  });
});

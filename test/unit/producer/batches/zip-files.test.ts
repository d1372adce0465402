// A ZIP of files becomes one JSONL row per file: stored and deflated entries (inflated by zlib) give
// their bytes back; an entry over the row limit is one row naming it, whether its size shows while
// inflating or from its compressed bytes alone; a deflate stream that does not inflate fails the body.
import crypto from 'node:crypto';
import { zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { zipAsJsonl } from '../../../../producer/batches/zip-files.ts';

/** The archive handed over in small pieces, as a network stream does. */
async function* pieces(zip: Uint8Array, size = 1000): AsyncIterable<Buffer> {
  for (let i = 0; i < zip.length; i += size) yield Buffer.from(zip.subarray(i, i + size));
}

async function rows(zip: Uint8Array, max: number): Promise<Record<string, unknown>[]> {
  const out: Buffer[] = [];
  for await (const b of zipAsJsonl(pieces(zip), 'image', max)) out.push(b);
  return Buffer.concat(out)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('zipAsJsonl', () => {
  it('stored and deflated files come back byte for byte, in order; a file over the limit is its error row', async () => {
    const noise = crypto.randomBytes(5000); // does not compress: inflates to over the limit from near its own size
    const text = Buffer.from('abc'.repeat(3000)); // 9000 bytes from a few dozen compressed
    const small = crypto.randomBytes(700);
    const zip = zipSync({
      'a/stored.bin': [new Uint8Array(small), { level: 0 }],
      'b/deflated.txt': [new Uint8Array(Buffer.from('hello '.repeat(50))), { level: 9 }],
      'c/noise.bin': [new Uint8Array(noise), { level: 6 }],
      'd/text.txt': [new Uint8Array(text), { level: 9 }],
      'e/empty.txt': [new Uint8Array(0), { level: 6 }],
      'f/more-noise.bin': [new Uint8Array(crypto.randomBytes(20000)), { level: 6 }], // refused from its compressed bytes
    });
    const r = await rows(zip, 4096);
    expect(r.map((x) => x.id)).toEqual(['a/stored.bin', 'b/deflated.txt', 'c/noise.bin', 'd/text.txt', 'e/empty.txt', 'f/more-noise.bin']);
    expect(Buffer.from((r[0]!.image as { b64: string }).b64, 'base64').equals(small)).toBe(true);
    expect(Buffer.from((r[1]!.image as { b64: string }).b64, 'base64').toString()).toBe('hello '.repeat(50));
    expect(r[2]!['$error']).toMatch(/over 4096 bytes/);
    expect(r[3]!['$error']).toMatch(/over 4096 bytes/);
    expect(r[4]!.image).toEqual({ b64: '' });
    expect(r[5]!['$error']).toMatch(/over 4096 bytes/);
  });

  it('a deflate stream that does not inflate fails the archive, naming the file', async () => {
    const zip = zipSync({ 'x.txt': [new Uint8Array(Buffer.from('hello '.repeat(100))), { level: 9 }] });
    // The compressed data starts after the 30-byte local header and the name: turn its first block type invalid (11).
    zip[30 + 'x.txt'.length] = 0xff;
    await expect(rows(zip, 1 << 20)).rejects.toThrow(/does not inflate at "x.txt"/);
  });
});

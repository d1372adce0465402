// A local chunk read in buffers that end at row ends (ownedLines) and segmented without copies
// (Segmenter.pushOwned) gives the same rows, numbers and long-row items as the streamed path; the
// segments that are whole buffers are moved, not copied.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ownedLines } from '../../../../workers/rows/line-buffers.ts';
import { movedBuffers, Segmenter, type Segment } from '../../../../workers/rows/segmenter.ts';
import { tmpDir } from '../../../fixtures/models.ts';

const dir = tmpDir('line-buffers');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Each segment's rows (its first row's number with each), and the long rows. */
const items = (segs: Segment[]) =>
  segs.flatMap((s) =>
    s.kind === 'long'
      ? [`LONG ${s.row} ${s.bytes}`]
      : Buffer.from(s.bytes)
          .toString()
          .split('\n')
          .filter((l) => l.trim())
          .map((l, i) => `${s.firstRow + i} ${l}`),
  );

async function both(text: string, start: number, end: number, size: number, format: 'jsonl' | 'csv' = 'jsonl') {
  const file = path.join(dir, `f-${Math.random()}`);
  fs.writeFileSync(file, text);
  const opts = { segmentRows: 5, segmentBytes: size, maxRowBytes: 60 };
  const a = new Segmenter(format, opts);
  const streamed = [...a.push(Buffer.from(text).subarray(start, end)), ...a.end()];
  const b = new Segmenter(format, opts);
  const owned: Segment[] = [];
  for await (const buf of ownedLines(file, start, end, size)) owned.push(...b.pushOwned(buf));
  owned.push(...b.end());
  expect(b.rowCount).toBe(a.rowCount);
  expect(items(owned)).toEqual(items(streamed));
  return owned;
}

describe('ownedLines with Segmenter.pushOwned', () => {
  it('the rows of any range, any buffer size: blank lines, CRLF, rows longer than a buffer or than the limit, no final newline', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => (i % 9 === 4 ? '' : i % 13 === 7 ? `{"a":${i},"p":"${'x'.repeat(i * 3)}"}\r` : `{"a":${i}}`));
    const text = lines.join('\n');
    for (const size of [8, 23, 50, 200, 10_000])
      for (const [s, e] of [
        [0, text.length],
        [0, text.length - 3],
        [lines[0]!.length + 1, text.length],
      ])
        await both(text, s!, e!, size);
    await both('a,b\n1,"x\ny"\n3,4\n', 0, 17, 6, 'csv');
  });

  it('a segment that is a whole buffer is that buffer, moved', async () => {
    const text = Array.from({ length: 12 }, (_, i) => `{"a":${i}}`).join('\n') + '\n';
    // 12 rows of 8-9 bytes in buffers of about 30 bytes: segments of 3 rows, each a whole buffer.
    const segs = await both(text, 0, text.length, 30);
    const moved = segs.filter((s) => s.kind === 'rows' && movedBuffers.has(s.bytes.buffer));
    expect(moved.length).toBeGreaterThan(2);
  });
});

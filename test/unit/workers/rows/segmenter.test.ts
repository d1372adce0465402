import { describe, expect, it } from 'vitest';
import { RowScanner } from '../../../../core/rows/scanner.ts';
import { Segmenter, type Segment } from '../../../../workers/rows/segmenter.ts';

function segment(text: string, pieces: number, opts: ConstructorParameters<typeof Segmenter>[1], format: 'jsonl' | 'csv' = 'jsonl') {
  const buf = Buffer.from(text);
  const s = new Segmenter(format, opts);
  const out: Segment[] = [];
  const step = Math.ceil(buf.length / pieces);
  for (let i = 0; i < buf.length; i += step) out.push(...s.push(buf.subarray(i, i + step)));
  out.push(...s.end());
  return { out, rows: s.rowCount };
}

const rowsOf = (segs: Segment[]) =>
  segs.flatMap((s) =>
    s.kind === 'rows'
      ? s.bytes
          .toString()
          .split('\n')
          .filter((l) => l.trim())
      : [`LONG ${s.row}`],
  );

describe('Segmenter', () => {
  it('hands out whole rows, numbered, bounded by rows and bytes, in any buffering', () => {
    const text = Array.from({ length: 50 }, (_, i) => `{"a":${i},"pad":"${'x'.repeat(i % 7)}"}`).join('\n\n');
    for (const pieces of [1, 3, 17, text.length]) {
      const { out, rows } = segment(text, pieces, { segmentRows: 8, segmentBytes: 100 });
      expect(rows).toBe(50);
      expect(rowsOf(out).map((l) => JSON.parse(l).a)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      for (const s of out) {
        if (s.kind !== 'rows') throw new Error('no long rows here');
        expect(s.rows).toBeLessThanOrEqual(8);
        expect(s.bytes.length).toBeLessThan(100 + 30);
        expect(JSON.parse(s.bytes.toString().trim().split('\n')[0]!).a).toBe(s.firstRow);
      }
    }
  });

  it('skips a row longer than maxRowBytes, reporting it as long, and keeps the rows around it', () => {
    const long = `{"a":2,"x":"${'y'.repeat(5000)}"}`;
    const text = ['{"a":0}', '{"a":1}', long, '{"a":3}', long, long].join('\n') + '\n{"a":6}';
    for (const pieces of [1, 5, 64, text.length]) {
      const { out, rows } = segment(text, pieces, { maxRowBytes: 1000, segmentRows: 2 });
      expect(rows).toBe(7);
      expect(rowsOf(out).map((l) => (l.startsWith('LONG') ? l : JSON.parse(l).a))).toEqual([0, 1, 'LONG 2', 3, 'LONG 4', 'LONG 5', 6]);
      for (const s of out) if (s.kind === 'rows') expect(s.bytes.length).toBeLessThan(1000);
    }
  });

  it('keeps a quoted CSV newline inside its row', () => {
    const { out } = segment('1,"a\nb"\n2,c\n', 4, { segmentRows: 1 }, 'csv');
    expect(out.map((s) => s.kind === 'rows' && s.bytes.toString())).toEqual(['1,"a\nb"\n', '2,c\n']);
  });
});

describe('RowScanner chunk bounds', () => {
  it('closes a chunk at chunkBytes as well as chunkRows', () => {
    const s = new RowScanner('jsonl', { chunkRows: 100, chunkBytes: 25 });
    s.push(Buffer.from(Array.from({ length: 10 }, (_, i) => `{"a":${i}}`).join('\n')));
    const r = s.end();
    expect(r.rows).toBe(10);
    expect(r.chunks.map((c) => c.rows)).toEqual([4, 4, 2]);
  });

  it('refuses a CSV header longer than maxHeaderBytes without holding it', () => {
    const s = new RowScanner('csv', { maxHeaderBytes: 1000 });
    expect(() => {
      for (let i = 0; i < 100; i++) s.push(Buffer.from('c,'.repeat(100)));
    }).toThrow(/longer than 1000 bytes/);
  });
});

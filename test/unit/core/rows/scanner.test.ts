import { describe, expect, it } from 'vitest';
import { RowScanner, splitRows, type RowFormat } from '../../../../core/rows/scanner.ts';

function scan(text: string, format: RowFormat, chunkRows: number, pieces = 1) {
  const buf = Buffer.from(text);
  const s = new RowScanner(format, { chunkRows });
  const step = Math.ceil(buf.length / pieces);
  for (let i = 0; i < buf.length; i += step) s.push(buf.subarray(i, i + step));
  return { result: s.end(), buf };
}

describe('RowScanner', () => {
  it('counts JSONL rows, skips blank lines, records chunk byte ranges, in any buffering', () => {
    const text = '{"a":1}\n\n{"a":2}\r\n  \n{"a":3}\n{"a":4}';
    for (const pieces of [1, 2, 3, 7, text.length]) {
      const { result, buf } = scan(text, 'jsonl', 2, pieces);
      expect(result.rows).toBe(4);
      expect(result.chunks.map((c) => [c.firstRow, c.rows])).toEqual([
        [0, 2],
        [2, 2],
      ]);
      const rows = result.chunks.flatMap((c) => splitRows(buf.subarray(c.start, c.end), 'jsonl'));
      expect(rows.map((r) => JSON.parse(r).a)).toEqual([1, 2, 3, 4]);
    }
  });

  it('takes the CSV header apart and keeps quoted newlines inside a row', () => {
    const text = 'id,x,y\n1,"multi\nline",2\n2,3,4\n\n3,"a ""quoted"" , comma",5\n';
    for (const pieces of [1, 4, text.length]) {
      const { result, buf } = scan(text, 'csv', 2, pieces);
      expect(result.header).toBe('id,x,y');
      expect(result.rows).toBe(3);
      const rows = result.chunks.flatMap((c) => splitRows(buf.subarray(c.start, c.end), 'csv'));
      expect(rows).toEqual(['1,"multi\nline",2', '2,3,4', '3,"a ""quoted"" , comma",5']);
      expect(result.chunks.map((c) => c.firstRow)).toEqual([0, 2]);
    }
  });

  it('stops at the row cap', () => {
    const atCap = new RowScanner('jsonl', { maxRows: 3 });
    atCap.push(Buffer.from('1\n2\n3\n'));
    expect(atCap.end().rows).toBe(3); // as many rows as the cap: accepted
    const s = new RowScanner('jsonl', { maxRows: 2 });
    expect(() => s.push(Buffer.from('1\n2\n3\n'))).toThrow(/more than 2 rows/);
  });

  it('reports an empty file as zero rows', () => {
    expect(scan('', 'jsonl', 5).result).toEqual({ bytes: 0, rows: 0, chunks: [] });
    expect(scan('\n \n', 'jsonl', 5).result.rows).toBe(0);
  });
});

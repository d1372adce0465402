import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { datasetRows, profileDataset } from '../../../core/datasets.ts';
import { AppError } from '../../../core/errors.ts';
import { DATASET_ID_RE } from '../../../core/datasets.ts';

/** The text in small pieces, so rows and multi-byte characters straddle chunk boundaries. */
const chunks = (text: string, size = 7) =>
  Readable.from(Array.from({ length: Math.ceil(Buffer.byteLength(text) / size) }, (_, i) => Buffer.from(text).subarray(i * size, (i + 1) * size)));

async function failure(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).httpStatus).toBe(400);
    return e as AppError;
  }
  throw new Error('expected a failure');
}

describe('dataset profiling', () => {
  it('infers integer, number and category columns from CSV, with missing and distinct counts', async () => {
    const csv = 'a,b,c,d\n1,0.5,x,\n2,1e3,"y, quoted",4\n\n3,-2,ü,5\n';
    const p = await profileDataset(chunks(csv), 'csv');
    expect(p.rows).toBe(3);
    expect(p.columns).toEqual([
      { name: 'a', type: 'integer' },
      { name: 'b', type: 'number' },
      { name: 'c', type: 'category' },
      { name: 'd', type: 'integer' },
    ]);
    expect(p.stats.find((s) => s.name === 'd')).toEqual({ name: 'd', missing: 1, distinct: 2 });
    expect(p.stats.find((s) => s.name === 'c')!.distinct).toBe(3);
  });

  it('reads a NaN cell as missing, and marks string columns whose values are all different (identifiers)', async () => {
    const csv = ['n,id,c', ...Array.from({ length: 30 }, (_, i) => `${i % 5 === 0 ? 'NaN' : i},u${i},${i % 2 ? 'x' : 'y'}`)].join('\n') + '\n';
    const p = await profileDataset(chunks(csv), 'csv');
    expect(p.columns.map((c) => c.type)).toEqual(['integer', 'text', 'category']);
    expect(p.stats.find((s) => s.name === 'n')).toEqual({ name: 'n', missing: 6, distinct: 24 });
    expect(p.stats.find((s) => s.name === 'id')!.unique).toBe(true);
    expect(p.stats.find((s) => s.name === 'c')!.unique).toBe(false);
  });

  it('infers JSONL columns: JSON numbers are numbers, short strings are categories, absent keys are missing', async () => {
    const jsonl = ['{"x":1,"y":"a","z":1.5}', '', '{"x":2,"y":"b"}', '{"x":3,"y":"1","z":2}'].join('\n');
    const p = await profileDataset(chunks(jsonl, 5), 'jsonl');
    expect(p.rows).toBe(3);
    expect(p.columns).toEqual([
      { name: 'x', type: 'integer' },
      { name: 'y', type: 'category' },
      { name: 'z', type: 'number' },
    ]);
    expect(p.stats.find((s) => s.name === 'z')!.missing).toBe(1);
  });

  it('tells free text from categories and gives text length statistics in characters and tokens', async () => {
    const lines = ['title,kind,code'];
    const words = ['alpha', 'beta', 'gamma', 'delta', 'épsilon', '日本語', 'zeta'];
    for (let i = 0; i < 40; i++) {
      // 3 to 9 tokens of 4-7 characters; every title is different. `code` is short and nearly unique.
      const n = 3 + (i % 7);
      lines.push(`"${Array.from({ length: n }, (_, j) => words[(i + j) % words.length]).join(' ')} ${i}",${['a', 'b', 'c'][i % 3]},x${i}`);
    }
    const p = await profileDataset(chunks(lines.join('\n') + '\n', 50), 'csv');
    expect(p.columns).toEqual([
      { name: 'title', type: 'text' },
      { name: 'kind', type: 'category' },
      { name: 'code', type: 'text' },
    ]);
    const t = p.stats.find((s) => s.name === 'title')!;
    const counts = lines.slice(1).map((l) => l.slice(1, l.lastIndexOf('"')));
    const tokens = counts.map((c) => c.split(' ').filter((w) => [...w].length >= 2).length).sort((a, b) => a - b);
    const chars = counts.map((c) => [...c].length).sort((a, b) => a - b);
    expect(t.length!.tokens).toEqual({
      min: tokens[0],
      mean: Math.round((tokens.reduce((a, b) => a + b, 0) / 40) * 100) / 100,
      p50: tokens[19],
      p95: tokens[37],
      max: tokens[39],
    });
    expect(t.length!.chars.min).toBe(chars[0]);
    expect(t.length!.chars.max).toBe(chars[39]);
    expect(p.stats.find((s) => s.name === 'kind')!.length).toBeUndefined();
  });

  it('names the line of a ragged CSV row', async () => {
    const e = await failure(profileDataset(chunks('a,b\n1,2\n3\n4,5\n'), 'csv'));
    expect(e.message).toBe('line 3: has 1 fields, the header has 2');
  });

  it('names the line of a JSON line that does not parse, counting blank lines', async () => {
    const e = await failure(profileDataset(chunks('{"a":1}\n\n{"a":2\n'), 'jsonl'));
    expect(e.message).toMatch(/^line 3: not valid JSON/);
  });

  it('rejects nested values, duplicate and empty header names', async () => {
    expect((await failure(profileDataset(chunks('{"a":[1,2]}'), 'jsonl'))).message).toMatch(/line 1: "a" holds an array/);
    expect((await failure(profileDataset(chunks('a,a\n1,2\n'), 'csv'))).message).toMatch(/line 1: header names column "a" twice/);
    expect((await failure(profileDataset(chunks('a,\n1,2\n'), 'csv'))).message).toMatch(/line 1: header column 2 has no name/);
  });

  it('yields CSV rows as records with empty fields as null', async () => {
    const rows = [];
    for await (const r of datasetRows(chunks('a,b\n1,\n'), 'csv')) rows.push(r);
    expect(rows).toEqual([{ line: 2, values: { a: '1', b: null } }]);
  });

  it('bounds every row by maxRowBytes (MODELQ_MAX_ROW_BYTES), reading no further than the bound', async () => {
    expect((await failure(profileDataset(chunks(`{"a":1}\n{"a":"${'x'.repeat(200)}"}\n`), 'jsonl', { maxRowBytes: 100 }))).message).toBe(
      'line 2: is longer than 100 bytes (MODELQ_MAX_ROW_BYTES)',
    );
    expect((await failure(profileDataset(chunks(`${'h'.repeat(300)}\n1\n`), 'csv', { maxRowBytes: 100 }))).message).toMatch(
      /^line 1: is longer than 100 bytes \(MODELQ_MAX_ROW_BYTES\)/,
    );
    // A line that never ends: refused after about the bound, not buffered until the source ends.
    let pulled = 0;
    async function* endless() {
      for (;;) {
        pulled++;
        yield Buffer.alloc(64, 0x61);
      }
    }
    expect((await failure(profileDataset(endless(), 'jsonl', { maxRowBytes: 1000 }))).message).toMatch(/^line 1: is longer than 1000 bytes/);
    expect(pulled).toBeLessThan(20);
  });

  it('reads a line spread over many chunks whole, multi-byte characters included', async () => {
    const long = `{"s":"${'é€'.repeat(5000)}","n":1}`;
    const rows = [];
    for await (const r of datasetRows(chunks(`${long}\n${long}`, 13), 'jsonl')) rows.push(r);
    expect(rows.map((r) => r.line)).toEqual([1, 2]);
    expect(rows[1]!.values).toEqual(JSON.parse(long));
  });

  it('has ids the routes can check', () => {
    expect(DATASET_ID_RE.test('ds_0123456789abcdef0123')).toBe(true);
    expect(DATASET_ID_RE.test('ds_../x')).toBe(false);
  });
});

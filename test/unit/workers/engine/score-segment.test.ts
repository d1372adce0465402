// The engine's segment scorer gives, byte for byte, what the per-row path gave (JSON.parse or the
// CSV split, the ordinary row parser, JSON.stringify of each line), with and without its fast path.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../../core/errors.ts';
import { rowParser } from '../../../../core/rows/parse.ts';
import { splitRows } from '../../../../core/rows/scanner.ts';
import type { RawTensor, TensorSpec } from '../../../../core/tensors.ts';
import { scoreSegment, type RunFeeds } from '../../../../workers/engine/score-segment.ts';

const F = 4;
const inputs: TensorSpec[] = [{ name: 'input', datatype: 'FP32', shape: [-1, F] }];

/** A stand-in model: two outputs per row, its sum and its first value; a 13 in the input fails the run. */
const run: RunFeeds = async (feeds) => {
  const x = feeds.input!.data as Float32Array;
  const n = feeds.input!.dims[0]!;
  if (x.some((v) => v === 13)) throw new AppError('bad_request', 'unlucky input');
  const out = new Float32Array(n * 2);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < F; j++) out[2 * i] = out[2 * i]! + x[i * F + j]!;
    out[2 * i + 1] = x[i * F]!;
  }
  return { out: { type: 'float32', dims: [n, 2], data: out } as RawTensor };
};

/** The old path: rows as strings, the ordinary parser, a run per row, JSON.stringify per line. */
async function reference(text: string, format: 'jsonl' | 'csv', header?: string) {
  const parse = rowParser(format, inputs, header);
  const out: string[] = [];
  const err: string[] = [];
  const rows = splitRows(Buffer.from(text), format);
  for (let n = 0; n < rows.length; n++) {
    const r = parse(rows[n]!);
    if ('error' in r) {
      err.push(JSON.stringify({ row: n, ...(r.id !== undefined ? { id: r.id } : {}), error: r.error }));
      continue;
    }
    const data = Float32Array.from(r.values.input as number[]);
    try {
      const res = await run({ input: { type: 'float32', dims: [1, F], data } });
      out.push(JSON.stringify({ row: n, ...(r.id !== undefined ? { id: r.id } : {}), outputs: { out: Array.from(res.out!.data as Float32Array) } }));
    } catch (e) {
      err.push(JSON.stringify({ row: n, ...(r.id !== undefined ? { id: r.id } : {}), error: { code: 'bad_request', message: (e as Error).message } }));
    }
  }
  return { out: out.map((l) => `${l}\n`).join(''), err: err.map((l) => `${l}\n`).join('') };
}

async function both(text: string, format: 'jsonl' | 'csv', header?: string) {
  const job = { format, inputs, firstRow: 0, ...(header !== undefined ? { header } : {}) };
  const fast = await scoreSegment({ ...job, bytes: Buffer.from(text) }, run);
  const slow = await scoreSegment({ ...job, bytes: Buffer.from(text) }, run, false);
  const want = await reference(text, format, header);
  for (const got of [fast, slow]) {
    expect(Buffer.from(got.out).toString()).toBe(want.out);
    expect(Buffer.from(got.err).toString()).toBe(want.err);
  }
}

const num = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.float({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.double({ min: -10, max: 10, noNaN: true }).map((x) => x.toFixed(5)),
  fc.constantFrom('1e400', '-0', '0.0', '1E-7', '01', '1.', '.5', '+1', '1e', 'NaN', 'null', '"1"', '3.4028235e38', '1.0000000000000000001'),
);
const id = fc.oneof(
  fc.integer().map(String),
  fc.string().map((s) => JSON.stringify(s)),
  fc.constantFrom('1.5', '-0', 'null', '{"a":1}', '"\\u0041"', '007', '[1]'),
);
const ws = fc.constantFrom('', ' ', '\t', '\r');

describe('scoreSegment', () => {
  it('JSONL: the same output and error lines as the per-row path, for any rows', async () => {
    const row = fc
      .tuple(
        fc.option(id),
        fc.array(num, { minLength: F - 1, maxLength: F + 1 }),
        ws,
        fc.option(fc.constantFrom('"other":1', '"input":[1,2,3,4]')),
        fc.boolean(),
      )
      .map(([i, xs, w, extra, garbage]) => {
        const parts = [...(i !== null ? [`"id":${i}`] : []), `"input":${w}[${xs.join(`,${w}`)}]`, ...(extra ? [extra] : [])];
        return `${w}{${parts.join(',')}}${garbage ? 'x' : ''}${w}`;
      });
    await fc.assert(
      fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 40 }), async (rows) => both(rows.join('\n'), 'jsonl')),
      { numRuns: 150 },
    );
  });

  it('CSV: the same output and error lines as the per-row path, with and without an id column', async () => {
    const cell = fc.oneof(num, fc.constantFrom('', ' 1 ', 'x', '"2"', 'Infinity'));
    for (const header of ['id,a,b,c,d', 'a,b,id,c,d', 'a,b,c,d']) {
      const cols = header.split(',').length;
      const row = fc
        .tuple(
          fc.array(cell, { minLength: cols - 1, maxLength: cols + 1 }),
          fc.string({ maxLength: 6 }).filter((s) => !/[\n"]/.test(s)),
        )
        .map(([cells, idv]) => {
          const c = [...cells];
          c.splice(header.split(',').indexOf('id'), 0, idv);
          return (header.includes('id') ? c : cells).join(',');
        });
      await fc.assert(
        fc.asyncProperty(fc.array(row, { minLength: 1, maxLength: 30 }), fc.boolean(), async (rows, crlf) =>
          both(rows.join(crlf ? '\r\n' : '\n'), 'csv', header),
        ),
        { numRuns: 80 },
      );
    }
  });

  it('a run that fails on bad data fails only its bad rows', async () => {
    const text = ['{"input":[1,2,3,4]}', '{"input":[1,2,3]}', '{"id":"z","input":[0,13,0,0]}', '{"id":7,"input":[5,6,7,8]}'].join('\n');
    await both(text, 'jsonl');
    const got = await scoreSegment({ format: 'jsonl', inputs, firstRow: 10, bytes: Buffer.from(text) }, run);
    expect(got).toMatchObject({ rows: 4, completed: 2, failed: 2 });
    expect(Buffer.from(got.err).toString()).toMatch(/^\{"row":11,.*\n\{"row":12,"id":"z","error":\{"code":"bad_request","message":"unlucky input"\}\}\n$/);
  });
});

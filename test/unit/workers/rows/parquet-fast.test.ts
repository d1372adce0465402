// The fast Parquet decoder against the rows that were written (files by hyparquet-writer and by
// arrow-rs through parquet-wasm: pages v1 and v2, plain and dictionary, every codec, nulls, pages
// and runs that split rows differently), and the row group scorer with and without it, byte for byte.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../../core/errors.ts';
import { FastRowGroup } from '../../../../workers/rows/parquet-fast.ts';
import { metadataOf, planParquet, readFooter, rowGroupChunks } from '../../../../core/rows/parquet.ts';
import type { Target } from '../../../../core/rows/parquet-column.ts';
import type { RawTensor, TensorSpec } from '../../../../core/tensors.ts';
import { scoreRowGroup, type RowGroupJob } from '../../../../workers/engine/score-parquet.ts';
import type { RunFeeds } from '../../../../workers/engine/score-segment.ts';
import { writeArrow, writeHyparquet, type ArrowOptions, type Physical, type Rows } from '../../../helpers/parquet-writers.ts';

const PER = 3;

/** A stand-in model: the input back as FP32; a 13 anywhere fails the run (so rows are retried one by one). */
const run: RunFeeds = async (feeds) => {
  const [t] = Object.values(feeds);
  const x = t!.data as Float32Array;
  if (x.some((v) => v === 13)) throw new AppError('bad_request', 'unlucky input');
  return { y: { type: 'float32', dims: t!.dims, data: Float32Array.from(x) } as RawTensor };
};

async function groups(file: Uint8Array, inputs: TensorSpec[]): Promise<RowGroupJob[]> {
  const read = async (s: number, e: number) => file.subarray(s, e);
  const footer = await readFooter(read, file.length);
  const meta = metadataOf(footer);
  const plan = planParquet(meta, inputs);
  return rowGroupChunks(meta).map((c) => ({
    footer,
    bytes: file.slice(c.start, c.end),
    start: c.start,
    fileBytes: file.length,
    inputs,
    plan,
    firstRow: c.firstRow,
    rows: c.rows,
  }));
}

/** What a row should give: its values as the model's FP32 input, or the ordinary path's message. */
function expected(rows: Rows, i: number): number[] | string {
  if (rows.lists) {
    const c = rows.lists[i]!;
    if (c === null) return 'column "input" is null';
    if (c.length !== PER) return `column "input" has ${c.length} values, the model's input "input" [-1,${PER}] takes ${PER} per row`;
    const k = c.indexOf(null);
    if (k >= 0) return `column "input" has a null value at ${k}`;
    return c.map((v) => Math.fround(v!));
  }
  const s = rows.scalars![i]!;
  const k = s.indexOf(null);
  return k >= 0 ? `column "f${k}" is null` : s.map((v) => Math.fround(v!));
}

/** Reads every row group with the fast decoder in runs of `runRows` and checks each row against what was written. */
async function checkFast(file: Uint8Array, rows: Rows, runRows: number) {
  const inputs: TensorSpec[] = [{ name: rows.lists ? 'input' : 'x', datatype: 'FP32', shape: [-1, PER] }];
  for (const g of await groups(file, inputs)) {
    const meta = metadataOf(g.footer);
    const fast = FastRowGroup.open(meta, g.plan, inputs, [PER], g);
    // The decoder reads PLAIN and dictionary pages; arrow-rs writes v2 integer pages without a dictionary in DELTA_BINARY_PACKED (hyparquet reads those).
    const encodings = meta.row_groups
      .flatMap((rg) => rg.columns)
      .filter((c) => c.meta_data?.path_in_schema[0] !== 'id')
      .flatMap((c) => c.meta_data!.encodings);
    if (encodings.includes('DELTA_BINARY_PACKED')) {
      expect(fast).toBeNull();
      continue;
    }
    expect(fast).not.toBeNull();
    for (let at = 0; at < g.rows; at += runRows) {
      const n = Math.min(runRows, g.rows - at);
      const arrays: Target[] = [new Float32Array(n * PER)];
      const problems = fast!.read(n, arrays);
      for (let r = 0; r < n; r++) {
        const want = expected(rows, g.firstRow + at + r);
        if (typeof want === 'string') expect(problems[r]).toBe(want);
        else {
          expect(problems[r]).toBeNull();
          expect(Array.from(arrays[0]!.subarray(r * PER, (r + 1) * PER))).toEqual(want);
        }
      }
    }
  }
}

/** scoreRowGroup with the fast decoder and with hyparquet (MODELQ_FAST_ROWS=0): the same bytes. */
async function checkScores(file: Uint8Array, inputs: TensorSpec[]) {
  for (const g of await groups(file, inputs)) {
    const fast = await scoreRowGroup(g, run);
    const slow = await scoreRowGroup(g, run, false);
    expect(Buffer.from(fast.out).toString()).toBe(Buffer.from(slow.out).toString());
    expect(Buffer.from(fast.err).toString()).toBe(Buffer.from(slow.err).toString());
    expect([fast.completed, fast.failed, fast.rows]).toEqual([slow.completed, slow.failed, slow.rows]);
  }
}

const physical = fc.constantFrom<Physical>('FLOAT', 'DOUBLE', 'INT32', 'INT64');
/** Values each type holds exactly (a few repeated ones make dictionaries worth writing), 13 among them. */
const value = (t: Physical) =>
  fc.oneof(
    t === 'FLOAT' || t === 'DOUBLE' ? fc.float({ noNaN: true, noDefaultInfinity: true }).map(Math.fround) : fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    fc.constantFrom(0, 1, -2, 13, 7),
  );
const listRows = (t: Physical, nulls: boolean) =>
  fc
    .array(
      fc.tuple(
        fc.option(fc.integer({ min: -1000, max: 10 ** 12 }), { freq: 5 }),
        nulls
          ? fc.option(fc.array(fc.option(value(t), { freq: 8 }), { minLength: PER - 1, maxLength: PER + 1 }), { freq: 6 })
          : fc.array(value(t), { minLength: PER, maxLength: PER }),
      ),
      { minLength: 1, maxLength: 120 },
    )
    .map((xs): Rows => ({ ids: xs.map((x) => x[0]), lists: xs.map((x) => x[1]) }));
const scalarRows = (t: Physical) =>
  fc
    .array(fc.tuple(fc.option(fc.integer(), { freq: 5 }), fc.array(fc.option(value(t), { freq: 8 }), { minLength: PER, maxLength: PER })), {
      minLength: 1,
      maxLength: 120,
    })
    .map((xs): Rows => ({ ids: xs.map((x) => x[0]), scalars: xs.map((x) => x[1]) }));
const arrowOptions: fc.Arbitrary<ArrowOptions> = fc.record({
  v2: fc.boolean(),
  dictionary: fc.boolean(),
  codec: fc.constantFrom('UNCOMPRESSED', 'SNAPPY', 'GZIP', 'ZSTD', 'BROTLI', 'LZ4_RAW'),
  pageBytes: fc.constantFrom(64, 512, 1 << 20),
  groupRows: fc.integer({ min: 7, max: 150 }),
  batch: fc.constantFrom(5, 64, 1024),
});
// hyparquet-compressors refuses arrow-rs's LZ4_RAW stream of an empty page (a dictionary of all-null ids), on either path.
const scoreOptions = arrowOptions.filter((o) => o.codec !== 'LZ4_RAW');
const hyparquetOptions = fc.record({
  codec: fc.constantFrom('UNCOMPRESSED', 'SNAPPY', 'GZIP'),
  pageSize: fc.constantFrom(64, 400, 1 << 20),
  groupRows: fc.integer({ min: 7, max: 150 }),
}) as fc.Arbitrary<Parameters<typeof writeHyparquet>[2]>;
const runRows = fc.integer({ min: 1, max: 64 });

describe('fast Parquet decoder', () => {
  it('reads arrow-rs list columns (v1/v2 pages, dictionary or plain, every codec, nulls) as written', async () => {
    await fc.assert(
      fc.asyncProperty(
        physical.chain((t) => fc.tuple(fc.constant(t), listRows(t, true))),
        arrowOptions,
        runRows,
        async ([t, rows], o, n) => {
          await checkFast(writeArrow(rows, t, o), rows, n);
        },
      ),
      { numRuns: 120 },
    );
  });

  it('reads hyparquet-writer list columns (pages v2, required or optional lists and elements) as written', async () => {
    await fc.assert(
      fc.asyncProperty(
        physical.chain((t) =>
          fc.tuple(
            fc.constant(t),
            fc.boolean().chain((nulls) => listRows(t, nulls)),
          ),
        ),
        hyparquetOptions,
        runRows,
        async ([t, rows], o, n) => {
          await checkFast(writeHyparquet(rows, t, o), rows, n);
        },
      ),
      { numRuns: 80 },
    );
  });

  it('reads scalar columns of both writers (nulls, dictionaries, codecs) as written', async () => {
    await fc.assert(
      fc.asyncProperty(
        physical.chain((t) => fc.tuple(fc.constant(t), scalarRows(t))),
        arrowOptions,
        fc.boolean(),
        runRows,
        async ([t, rows], o, arrow, n) => {
          await checkFast(
            arrow ? writeArrow(rows, t, o) : writeHyparquet(rows, t, { codec: 'SNAPPY', pageSize: o.pageBytes, groupRows: o.groupRows }),
            rows,
            n,
          );
        },
      ),
      { numRuns: 80 },
    );
  });

  it('scores list columns to the same output and error lines as hyparquet does, ids included', async () => {
    const inputs: TensorSpec[] = [{ name: 'input', datatype: 'FP32', shape: [-1, PER] }];
    await fc.assert(
      fc.asyncProperty(
        physical.chain((t) => fc.tuple(fc.constant(t), listRows(t, true))),
        scoreOptions,
        fc.boolean(),
        async ([t, rows], o, arrow) => {
          await checkScores(
            arrow ? writeArrow(rows, t, o) : writeHyparquet(rows, t, { codec: 'SNAPPY', pageSize: o.pageBytes, groupRows: o.groupRows }),
            inputs,
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('reads the ids as hyparquet does: null ids empty, an INT64 id past 2^53 as its exact digits (hyparquet reads such a column)', async () => {
    const inputs: TensorSpec[] = [{ name: 'input', datatype: 'FP32', shape: [-1, PER] }];
    const lists = [
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ];
    for (const ids of [
      [5, null, -7],
      [2 ** 60, 5, null],
    ]) {
      const file = writeHyparquet({ ids, lists }, 'FLOAT', { codec: 'UNCOMPRESSED', pageSize: 1 << 20, groupRows: 3 });
      await checkScores(file, inputs);
      const [g] = await groups(file, inputs);
      const out = Buffer.from((await scoreRowGroup(g!, run)).out).toString();
      expect(out).toContain(ids[0] === 5 ? '"id":5' : '"id":"1152921504606846976"');
      expect(out.split('\n').filter((l) => l.includes('"id"'))).toHaveLength(2);
    }
  });

  it('scores scalar feature columns (with nulls) to the same lines as hyparquet does, into FP32 and FP64 inputs', async () => {
    await fc.assert(
      fc.asyncProperty(
        physical.chain((t) => fc.tuple(fc.constant(t), scalarRows(t))),
        scoreOptions,
        fc.boolean(),
        fc.constantFrom('FP32', 'FP64') as fc.Arbitrary<'FP32' | 'FP64'>,
        async ([t, rows], o, arrow, datatype) => {
          const file = arrow ? writeArrow(rows, t, o) : writeHyparquet(rows, t, { codec: 'GZIP', pageSize: o.pageBytes, groupRows: o.groupRows });
          await checkScores(file, [{ name: 'x', datatype, shape: [-1, PER] }]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('scores the scalar columns of a column-input model ([N,1] inputs named as them): a null is NaN on both paths, never a failed row', async () => {
    await fc.assert(
      fc.asyncProperty(
        physical.chain((t) => fc.tuple(fc.constant(t), scalarRows(t))),
        scoreOptions,
        fc.boolean(),
        async ([t, rows], o, arrow) => {
          const file = arrow ? writeArrow(rows, t, o) : writeHyparquet(rows, t, { codec: 'GZIP', pageSize: o.pageBytes, groupRows: o.groupRows });
          const inputs: TensorSpec[] = Array.from({ length: PER }, (_, k) => ({ name: `f${k}`, datatype: 'FP32', shape: [-1, 1] }));
          await checkScores(file, inputs);
          let failed = 0;
          for (const g of await groups(file, inputs)) failed += (await scoreRowGroup(g, run)).failed;
          // The stand-in model fails only on a 13 in its first input; nulls are missing values.
          expect(failed).toBe(rows.scalars!.filter((s) => s[0] === 13).length);
        },
      ),
      { numRuns: 40 },
    );
  });
});

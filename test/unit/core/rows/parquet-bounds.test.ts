// Hostile Parquet files (issue 25, cases 1, 2, 3 and 6), built from a valid file and changed: each
// is refused with a ParquetShapeError naming what is wrong, by the fast decoder and by the
// hyparquet path alike, before anything sized from the lie is allocated or looped on.
import { describe, expect, it } from 'vitest';
import { FastRowGroup } from '../../../../workers/rows/parquet-fast.ts';
import { footerPlanBounded, INLINE_BYTES } from '../../../../core/rows/parquet-footer.ts';
import { parquetLimits, type ParquetLimits } from '../../../../core/rows/parquet-limits.ts';
import { readHybrid } from '../../../../core/rows/parquet-rle.ts';
import { decodeRowGroup, metadataOf, ParquetShapeError, planParquet, readFooter, rowGroupChunks, type RowGroupBytes } from '../../../../core/rows/parquet.ts';
import { readPageHeader, type Struct } from '../../../../core/rows/parquet-thrift.ts';
import type { TensorSpec } from '../../../../core/tensors.ts';
import { assemble, disassemble, pageHeaderBytes, smallFile, withEmptyStructs, type Layout } from '../../../helpers/parquet-hostile.ts';

const inputs: TensorSpec[] = [{ name: 'input', datatype: 'FP32', shape: [-1, 1] }];
const limits = parquetLimits({});

async function group(file: Uint8Array): Promise<RowGroupBytes & { rows: number }> {
  const footer = await readFooter(async (s, e) => file.subarray(s, e), file.length);
  const meta = metadataOf(footer);
  const g = meta.row_groups[0]!;
  const c = g.columns.map((c) => c.meta_data!);
  const start = Math.min(...c.map((m) => Number(m.dictionary_page_offset || m.data_page_offset)));
  const end = Math.max(...c.map((m) => Number(m.dictionary_page_offset || m.data_page_offset) + Number(m.total_compressed_size)));
  return { footer, bytes: file.slice(start, end), start, fileBytes: file.length, rows: Number(g.num_rows) };
}

/** Both readers on the file's `x` column: each must throw a ParquetShapeError matching `why`. */
async function bothRefuse(file: Uint8Array, why: RegExp, lim: ParquetLimits = limits) {
  const g = await group(file);
  const meta = metadataOf(g.footer);
  const plan = planParquet(meta, inputs);
  const before = process.memoryUsage().arrayBuffers;
  const fast = FastRowGroup.open(meta, plan, inputs, [1], { ...g, firstRow: 0 }, lim);
  expect(fast).not.toBeNull();
  let thrown: unknown;
  try {
    fast!.read(g.rows, [new Float32Array(g.rows)]);
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ParquetShapeError);
  expect((thrown as Error).message).toMatch(why);
  await expect(decodeRowGroup(g, ['x', 'id'], 0, g.rows, lim)).rejects.toThrow(why);
  await expect(decodeRowGroup(g, ['x', 'id'], 0, g.rows, lim)).rejects.toBeInstanceOf(ParquetShapeError);
  // Nothing was sized from the lie (a page of 1e8 values is 400 MB of indices alone).
  expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * 1024 * 1024);
}

/** The data page of column `x` (v2 from hyparquet-writer) and its header's v2 struct. */
function dataPage(l: Layout) {
  const page = l.pages[0]![0]!.find((p) => p.header.field_1 === 3)!;
  return { page, v2: page.header.field_8 as Struct };
}

describe('Parquet readers refuse hostile files', () => {
  it('the valid file reads, by both readers', async () => {
    const g = await group(smallFile());
    const meta = metadataOf(g.footer);
    const x = new Float32Array(5);
    expect(FastRowGroup.open(meta, planParquet(meta, inputs), inputs, [1], { ...g, firstRow: 0 }, limits)!.read(5, [x])).toEqual(Array(5).fill(null));
    expect(Array.from(x)).toEqual([1.5, 2.5, 1.5, 2.5, 1.5]);
    expect(Array.from((await decodeRowGroup(g, ['x'], 0, 5, limits)).get('x')!)).toEqual([1.5, 2.5, 1.5, 2.5, 1.5]);
  });

  it('case 1: dictionary indices that end in a varint continuation byte (looped forever)', async () => {
    const l = disassemble(smallFile());
    const { page, v2 } = dataPage(l);
    const levels = (v2.field_5 as number) + (v2.field_6 as number);
    // The values section: bit width 1, then a run header whose continuation bit promises another byte.
    page.body = Uint8Array.from([...page.body.subarray(0, levels), 1, 0x80]);
    await bothRefuse(assemble(l), /column x: a run header of levels or indices ends mid-varint|a run header of levels or indices ends mid-varint/);
  });

  it('the RLE reader never reads past its end: a varint, a run value, a bit-packed group', () => {
    const big = Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02, 7, 7, 7]);
    expect(() => readHybrid(big, 0, 2, 1, 4, new Uint8Array(4))).toThrow(/mid-varint/);
    expect(() => readHybrid(big, 0, 7, 1, 4, new Uint8Array(4))).toThrow(/longer than 5 bytes/);
    expect(() => readHybrid(Uint8Array.from([8, 1]), 0, 1, 8, 4, new Uint8Array(4))).toThrow(/mid-value/);
    expect(() => readHybrid(Uint8Array.from([3, 0xff, 0xff]), 0, 2, 16, 8, new Uint16Array(8))).toThrow(/mid-group/);
    expect(() => readHybrid(Uint8Array.from([0xfe, 0xff, 0xff, 0xff, 0x0f, 1]), 0, 6, 1, 4, new Uint8Array(4))).toThrow(
      /a run of 2147483647 .* where 4 remain/,
    );
  });

  it("page headers are read by hyparquet's Thrift reader within their column chunk: past it, or nested without end, a ParquetShapeError", () => {
    const l = disassemble(smallFile());
    const { page } = dataPage(l);
    const head = pageHeaderBytes(page.header);
    expect(readPageHeader(head, 0).header).toMatchObject({ type: 3, compressed: page.body.length });
    // The same bytes, the chunk ending one byte early: the header runs past it, though the array goes on.
    const padded = Uint8Array.from([...head, 0, 0, 0]);
    expect(() => readPageHeader(padded, 0, head.length - 1)).toThrow(ParquetShapeError);
    expect(() => readPageHeader(padded, 0, head.length - 1)).toThrow(/a page header runs past its column chunk/);
    // A struct opening a struct, a million deep (a byte each): refused, not a crash.
    const deep = new Uint8Array(1_000_000).fill(0x1c);
    expect(() => readPageHeader(deep, 0)).toThrow(ParquetShapeError);
    // A map (no page header has one) and a string longer than the bytes left.
    expect(() => readPageHeader(Uint8Array.from([0x1b, 0x01, 0x55, 0, 0, 0]), 0)).toThrow(/a page header cannot be read \(thrift unhandled type: 11\)/);
    expect(() => readPageHeader(Uint8Array.from([0x18, 0x7f, 1, 2, 0]), 0)).toThrow(/a page header runs past its column chunk/);
  });

  it('case 2: a footer declaring 3e8 rows is refused at planning and by the decoder, before any array of that size', async () => {
    const l = disassemble(smallFile());
    l.meta.num_rows = 300_000_000n;
    l.meta.row_groups[0]!.num_rows = 300_000_000n;
    const file = assemble(l);
    const footer = await readFooter(async (s, e) => file.subarray(s, e), file.length);
    const meta = metadataOf(footer);
    expect(() => rowGroupChunks(meta, { fileBytes: file.length, footerBytes: footer.length, groupRows: limits.groupRows })).toThrow(
      /row group 0 declares 300000000 rows; the limit is MODELQ_PARQUET_MAX_GROUP_ROWS/,
    );
    const g = await group(file);
    await expect(decodeRowGroup(g, ['x'], 0, 300_000_000, limits)).rejects.toThrow(/MODELQ_PARQUET_MAX_GROUP_ROWS/);
    // With the limit raised past it, the pages' 5 values still cannot make 3e8 rows.
    await expect(decodeRowGroup(g, ['x'], 0, 300_000_000, { ...limits, groupRows: 1e9 })).rejects.toBeInstanceOf(ParquetShapeError);
  });

  it('case 6: a data page declaring num_values=1e8 is refused before its levels are allocated', async () => {
    const l = disassemble(smallFile());
    const { v2 } = dataPage(l);
    v2.field_1 = 100_000_000;
    v2.field_3 = 100_000_000;
    const file = assemble(l);
    await bothRefuse(file, /num_values=100000000; the limit is MODELQ_PARQUET_MAX_PAGE_VALUES/);
    // Within a raised limit, still more entries than the row group has rows.
    await bothRefuse(file, /brings the column's values to 100000000; its row group has 5 rows/, { ...limits, pageValues: 1e9 });
  });

  it('case 3: a footer of millions of empty structs past MODELQ_PARQUET_MAX_FOOTER_BYTES is refused before it is parsed', async () => {
    const file = withEmptyStructs(smallFile(), 2_000_000);
    await expect(readFooter(async (s, e) => file.subarray(s, e), file.length, 1024 * 1024)).rejects.toThrow(
      /the Parquet footer is \d+ bytes; the limit is MODELQ_PARQUET_MAX_FOOTER_BYTES \(1048576\)/,
    );
  });

  it('case 3: a large footer is parsed in a thread (plan and chunks come back), ended past its time limit', async () => {
    const footerOf = async (f: Uint8Array) => readFooter(async (s, e) => f.subarray(s, e), f.length);
    const job = async (f: Uint8Array) => ({ footer: await footerOf(f), fileBytes: f.length, inputs, groupRows: limits.groupRows });
    const large = withEmptyStructs(smallFile(), 100_000); // past INLINE_BYTES, quick to parse
    expect((await footerOf(large)).length).toBeGreaterThan(INLINE_BYTES);
    expect(await footerPlanBounded(await job(large), 60_000)).toMatchObject({
      plan: { mode: 'scalars', columns: ['x'], id: 'id' },
      rows: 5,
      chunks: [{ index: 0, rows: 5 }],
    });
    const costly = withEmptyStructs(smallFile(), 3_000_000);
    await expect(footerPlanBounded(await job(costly), 50)).rejects.toThrow(/took longer than MODELQ_PARQUET_FOOTER_TIMEOUT \(50 ms\)/);
  });

  it('schemas that lie: num_children of -1 (hyparquet looped on it) or nested past the depth limit', async () => {
    const footerOf = async (l: Layout) => {
      const f = assemble(l);
      return readFooter(async (s, e) => f.subarray(s, e), f.length);
    };
    const minus = disassemble(smallFile());
    minus.meta.schema[2]!.num_children = -1;
    await expect(footerOf(minus).then(metadataOf)).rejects.toThrow(/schema element "id" declares -1 children/);
    const deep = disassemble(smallFile());
    const chain = Array.from({ length: 40 }, (_, i) => ({ name: `g${i}`, num_children: 1, repetition_type: 'OPTIONAL' as const }));
    deep.meta.schema = [
      { name: 'root', num_children: 3 },
      ...deep.meta.schema.slice(1),
      ...chain,
      { name: 'leaf', type: 'FLOAT', repetition_type: 'OPTIONAL' },
    ];
    await expect(footerOf(deep).then(metadataOf)).rejects.toThrow(/the schema nests more than 32 levels deep/);
  });

  it('page sizes past the column chunk or the page-bytes limit, and truncated files', async () => {
    const l = disassemble(smallFile());
    dataPage(l).page.header.field_2 = 2 ** 30;
    await bothRefuse(assemble(l, { keepSizes: true }), /MODELQ_PARQUET_MAX_PAGE_BYTES/);
    const file = smallFile();
    await expect(readFooter(async (s, e) => file.subarray(s, e), file.length - 3)).rejects.toThrow(/not a Parquet file/);
  });
});

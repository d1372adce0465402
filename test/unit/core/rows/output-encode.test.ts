import { tableFromIPC } from 'apache-arrow';
import { parquetReadObjects } from 'hyparquet';
import * as pw from 'parquet-wasm/node';
import { describe, expect, it } from 'vitest';
import { OutputEncoder, type EncodedPiece } from '../../../../core/rows/output-encode.ts';
import { outputLines, type RowRef } from '../../../../core/rows/output-lines.ts';
import { joinParquetFiles, ParquetJoiner, type ParquetFileSource } from '../../../../core/rows/parquet-stitch.ts';
import { jsonlToCsv } from '../../../../core/rows/to-csv.ts';
import { jsonlToParquet } from '../../../../core/rows/to-parquet.ts';
import type { RawTensor, TensorSpec } from '../../../../core/tensors.ts';

const outputs: TensorSpec[] = [
  { name: 'probabilities', datatype: 'FP32', shape: [-1, 3] },
  { name: 'label', datatype: 'INT64', shape: [-1] },
];

/** Two segments of rows: the second's run goes out of input order (as shape groups do), one has no ids. */
function segments(ids: (string | undefined)[][]): { refs: RowRef[]; result: Record<string, RawTensor> }[] {
  let n = 0;
  return ids.map((seg) => {
    const refs = seg.map((id) => ({ n: n++, id: id ?? '' }));
    const k = refs.length;
    const probs = Float32Array.from({ length: k * 3 }, (_, i) => (i % 7) / 7 + refs[0]!.n);
    const label = BigInt64Array.from({ length: k }, (_, i) => BigInt(refs[i]!.n % 3));
    return { refs, result: { probabilities: { type: 'float32', dims: [k, 3], data: probs }, label: { type: 'int64', dims: [k], data: label } } };
  });
}

async function* once(b: Buffer) {
  yield b;
}
const collect = async <T>(it: AsyncIterable<T>) => {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
};

function encode(format: 'csv' | 'parquet', segs: ReturnType<typeof segments>): EncodedPiece[] {
  return segs.map(({ refs, result }) => {
    const enc = new OutputEncoder({ format, outputs, classes: { values: ['a', 'b', 'c'], outputs: ['probabilities'] } });
    // Rows run in two pieces, the later rows first: the encoder puts them back in order.
    const half = Math.floor(refs.length / 2);
    enc.add(refs, half, refs.length, result, half);
    enc.add(refs, 0, half, result, 0);
    return enc.finish();
  });
}

describe('output encoded in the engine threads', () => {
  for (const ids of [
    [
      ['1', '2', '3'],
      ['4', undefined, '"x"'],
    ],
    [
      ['"a,b"', '"c\\"d"'],
      ['7', '8', '9', '10'],
    ],
    [[undefined, undefined], ['5']],
  ]) {
    it(`gives the same CSV and Parquet rows as the JSONL converters (ids ${JSON.stringify(ids)})`, async () => {
      const segs = segments(ids);
      const jsonl = Buffer.from(segs.map((s) => outputLines(s.refs, 0, s.refs.length, s.result)).join(''));

      const csvOld = (await collect(jsonlToCsv(once(jsonl), ['probabilities', 'label'], { values: ['a', 'b', 'c'], outputs: ['probabilities'] }))).join('');
      const pieces = encode('csv', segs) as Extract<EncodedPiece, { format: 'csv' }>[];
      const csvNew = pieces[0]!.header + pieces.map((p) => Buffer.from(p.body).toString()).join('');
      expect(csvNew).toBe(csvOld);

      const pqOld = Buffer.concat(await collect(jsonlToParquet(once(jsonl), outputs)));
      const joiner = new ParquetJoiner(outputs);
      const parts: Uint8Array[] = [];
      for (const p of encode('parquet', segs)) parts.push(...joiner.push(p as Extract<EncodedPiece, { format: 'parquet' }>));
      parts.push(await joiner.end());
      const pqNew = Buffer.concat(parts);
      const read = (b: Buffer) => parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer });
      const [a, b] = [await read(pqOld), await read(pqNew)];
      expect(b).toHaveLength(segs.reduce((n, s) => n + s.refs.length, 0));
      expect(b).toEqual(a);
    });
  }
});

describe('Parquet columns written straight from the output tensors (parquet-write.ts)', () => {
  it('read the same through arrow-rs and hyparquet: list and scalar outputs over several pages, numeric and string ids with nulls', async () => {
    // 300 floats a row, 1,000 rows: 1.2 MB of list values, so the column takes two pages.
    const wide: TensorSpec[] = [
      { name: 'p', datatype: 'FP32', shape: [-1, 300] },
      { name: 's', datatype: 'FP64', shape: [-1] },
    ];
    const k = 1000;
    const p = Float32Array.from({ length: k * 300 }, (_, i) => i / 7);
    const sc = Float64Array.from({ length: k }, (_, i) => i * 1.5);
    for (const idOf of [(i: number) => (i % 3 === 1 ? '' : String(i)), (i: number) => (i % 4 === 2 ? 'null' : JSON.stringify(`r${i}`))]) {
      const refs: RowRef[] = Array.from({ length: k }, (_, i) => ({ n: 10 + i, id: idOf(i) }));
      const enc = new OutputEncoder({ format: 'parquet', outputs: wide });
      enc.add(refs, 0, k, { p: { type: 'float32', dims: [k, 300], data: p }, s: { type: 'float64', dims: [k], data: sc } });
      const j = new ParquetJoiner(wide);
      const file = Buffer.concat([...j.push(enc.finish() as Extract<EncodedPiece, { format: 'parquet' }>), await j.end()]);
      const t = tableFromIPC(pw.readParquet(file).intoIPCStream());
      expect(t.numRows).toBe(k);
      const objects = await parquetReadObjects({ file: file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer });
      for (const i of [0, 1, 2, 3, 500, 873, 999]) {
        const want = idOf(i);
        const id = want === '' || want === 'null' ? null : (JSON.parse(want) as number | string);
        const r = t.get(i)!.toJSON() as { row: bigint; id: unknown; p: { toArray(): Float32Array }; s: number };
        expect([r.row, r.id ?? null, r.s]).toEqual([BigInt(10 + i), id, i * 1.5]);
        expect(Array.from(r.p.toArray())).toEqual(Array.from(p.subarray(i * 300, (i + 1) * 300)));
        expect(objects[i]).toEqual({ row: BigInt(10 + i), id, p: Array.from(p.subarray(i * 300, (i + 1) * 300)), s: i * 1.5 });
      }
    }
  });
});

describe('joining Parquet parts for a download', () => {
  const source = (b: Buffer): ParquetFileSource => ({
    bytes: b.length,
    read: async (s, e) => b.subarray(s, e),
    stream: async (s, e) => once(b.subarray(s, e)),
  });
  const read = (b: Buffer) => parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer });

  it("gives every part's rows in order, for parts the threads wrote and parts the converter wrote", async () => {
    const segs = segments([['1', '2', '3'], ['4', '5'], ['6']]);
    const threadPart = async (pieces: EncodedPiece[]) => {
      const j = new ParquetJoiner(outputs);
      const out: Uint8Array[] = [];
      for (const p of pieces) out.push(...j.push(p as Extract<EncodedPiece, { format: 'parquet' }>));
      out.push(await j.end());
      return Buffer.concat(out);
    };
    const enc = encode('parquet', segs);
    const a = await threadPart([enc[0]!, enc[1]!]);
    const b = await threadPart([enc[2]!]);
    const joined = Buffer.concat(await collect(await joinParquetFiles([source(a), source(b)])));
    expect(await read(joined)).toEqual([...(await read(a)), ...(await read(b))]);
    expect((await read(joined)).map((r) => r.row)).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);

    // Parts of the JSONL converter (snappy, statistics) join the same way.
    const conv = async (s: (typeof segs)[number]) =>
      Buffer.concat(await collect(jsonlToParquet(once(Buffer.from(outputLines(s.refs, 0, s.refs.length, s.result))), outputs)));
    const [c0, c1] = [await conv(segs[0]!), await conv(segs[1]!)];
    const joined2 = Buffer.concat(await collect(await joinParquetFiles([source(c0), source(c1)])));
    expect(await read(joined2)).toEqual([...(await read(c0)), ...(await read(c1))]);
  });

  it('refuses parts whose columns differ', async () => {
    const [withIds, without] = [segments([['1']]), segments([[undefined]])];
    const part = async (s: typeof withIds) => {
      const j = new ParquetJoiner(outputs);
      const out = j.push(encode('parquet', s)[0] as Extract<EncodedPiece, { format: 'parquet' }>);
      return Buffer.concat([...out, await j.end()]);
    };
    await expect(joinParquetFiles([source(await part(withIds)), source(await part(without))])).rejects.toThrow(/different columns/);
  });
});

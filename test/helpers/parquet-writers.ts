// Parquet files of a list column (and scalar columns) written two ways for the decoder tests:
// hyparquet-writer (data pages v2) and arrow-rs through parquet-wasm (pages v1 or v2, dictionary or
// plain, every codec), so the fast decoder is checked against more than one writer's habits.
import zlib from 'node:zlib';
import { Field, Float32, Float64, Int32, Int64, List, Table, vectorFromArray, tableToIPC, type DataType, type Vector } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';
import * as pw from 'parquet-wasm/node';

export type Physical = 'FLOAT' | 'DOUBLE' | 'INT32' | 'INT64';
export type Cell = (number | null)[] | null;
/** Rows of a file: ids, and either a list cell per row (`input`) or scalar values per row (`f0`, `f1`...). */
export interface Rows {
  ids: (number | null)[];
  lists?: Cell[];
  scalars?: (number | null)[][];
}

export interface ArrowOptions {
  v2: boolean;
  dictionary: boolean;
  codec: 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP' | 'ZSTD' | 'BROTLI' | 'LZ4_RAW';
  pageBytes: number;
  groupRows: number;
  batch: number;
}

const arrowType = (t: Physical): DataType => ({ FLOAT: new Float32(), DOUBLE: new Float64(), INT32: new Int32(), INT64: new Int64() })[t];
const big = (t: Physical, v: number | null) => (v === null ? null : t === 'INT64' ? BigInt(v) : v);

/** arrow-rs: id INT64, input list<t> (nullable elements), f0.. scalar t columns. */
export function writeArrow(rows: Rows, t: Physical, o: ArrowOptions): Uint8Array {
  const cols: Record<string, Vector> = {
    id: vectorFromArray(
      rows.ids.map((v) => (v === null ? null : BigInt(v))),
      new Int64(),
    ),
  };
  if (rows.lists)
    cols.input = vectorFromArray(
      rows.lists.map((c) => c && c.map((v) => big(t, v))),
      new List(new Field('item', arrowType(t), true)),
    );
  rows.scalars?.[0]?.forEach((_, k) => {
    cols[`f${k}`] = vectorFromArray(
      rows.scalars!.map((s) => big(t, s[k]!)),
      arrowType(t),
    );
  });
  const props = new pw.WriterPropertiesBuilder()
    .setWriterVersion(o.v2 ? pw.WriterVersion.V2 : pw.WriterVersion.V1)
    .setDictionaryEnabled(o.dictionary)
    .setCompression(pw.Compression[o.codec])
    .setDataPageSizeLimit(o.pageBytes)
    .setWriteBatchSize(o.batch)
    .setMaxRowGroupSize(o.groupRows)
    .build();
  return pw.writeParquet(pw.Table.fromIPCStream(tableToIPC(new Table(cols), 'stream')), props);
}

/** hyparquet-writer: the same columns, the list REQUIRED or OPTIONAL, elements REQUIRED or OPTIONAL as the rows need. */
export function writeHyparquet(rows: Rows, t: Physical, o: { codec: 'UNCOMPRESSED' | 'SNAPPY' | 'GZIP'; pageSize: number; groupRows: number }): Uint8Array {
  const lists = rows.lists ?? [];
  const listNull = lists.some((c) => c === null);
  const elemNull = lists.some((c) => c?.some((v) => v === null));
  const scalars = rows.scalars?.[0]?.length ?? 0;
  const listSchema = rows.lists
    ? ([
        { name: 'input', repetition_type: listNull ? 'OPTIONAL' : 'REQUIRED', num_children: 1, converted_type: 'LIST' },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: t, repetition_type: elemNull ? 'OPTIONAL' : 'REQUIRED' },
      ] as const)
    : [];
  const buf = parquetWriteBuffer({
    codec: o.codec,
    pageSize: o.pageSize,
    rowGroupSize: o.groupRows,
    compressors: { GZIP: (b: Uint8Array) => new Uint8Array(zlib.gzipSync(b)) },
    schema: [
      { name: 'root', num_children: 1 + (rows.lists ? 1 : 0) + scalars },
      { name: 'id', type: 'INT64', repetition_type: 'OPTIONAL' },
      ...listSchema,
      ...Array.from({ length: scalars }, (_, k) => ({ name: `f${k}`, type: t, repetition_type: 'OPTIONAL' as const })),
    ],
    columnData: [
      { name: 'id', data: rows.ids.map((v) => (v === null ? null : BigInt(v))) },
      ...(rows.lists ? [{ name: 'input', data: lists.map((c) => c && c.map((v) => big(t, v))) }] : []),
      ...Array.from({ length: scalars }, (_, k) => ({ name: `f${k}`, data: rows.scalars!.map((s) => big(t, s[k]!)) })),
    ],
  });
  return new Uint8Array(buf);
}

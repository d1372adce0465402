// Joins the Parquet row groups that engine threads encoded (core/rows/output-encode.ts) into one
// file, in order, on the worker's main thread: their bytes are passed on as they are, only the
// offsets in their metadata move, and the footer is written at the end. No value is decoded here.
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { writeColumn } from 'hyparquet-writer/src/column.js';
import type { TensorSpec } from '../tensors.ts';
import { PLAIN_COLUMN, type ColumnChunk, type ColumnPiece, type EncodedPiece } from './output-encode.ts';
import { metadataOf, ParquetShapeError, readFooter } from './parquet.ts';
import { schemaOf } from './to-parquet.ts';

type ParquetPiece = Extract<EncodedPiece, { format: 'parquet' }>;

/** A ByteWriter whose bytes so far can be taken out; `skip` counts bytes passed on without copying. */
class DrainingWriter extends ByteWriter {
  take(): Uint8Array {
    const out = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    return out;
  }
}

const shifted = (c: ColumnChunk, by: bigint): ColumnChunk => ({
  ...c,
  file_offset: c.file_offset + by,
  meta_data: c.meta_data && {
    ...c.meta_data,
    data_page_offset: c.meta_data.data_page_offset + by,
    ...(c.meta_data.dictionary_page_offset !== undefined ? { dictionary_page_offset: c.meta_data.dictionary_page_offset + by } : {}),
  },
});

export class ParquetJoiner {
  private readonly sink = new DrainingWriter();
  private writer?: ParquetWriter;
  private idType: 'DOUBLE' | 'STRING' | null = null;

  constructor(private readonly outputs: TensorSpec[]) {}

  private open(firstId: ParquetPiece['firstId']): ParquetWriter {
    this.idType = firstId === 'none' ? null : firstId === 'number' ? 'DOUBLE' : 'STRING';
    return (this.writer = new ParquetWriter({ writer: this.sink, schema: schemaOf(this.outputs, this.idType), codec: 'UNCOMPRESSED', statistics: false }));
  }

  /** One piece's row group; the bytes to write next, in order. */
  push(p: ParquetPiece): Uint8Array[] {
    const writer = this.writer ?? this.open(p.firstId);
    if (!p.rows) return [];
    const out: Uint8Array[] = [];
    const columns: ColumnChunk[] = [];
    const groupStart = this.sink.offset;
    const pass = (c: ColumnPiece, bytes: Uint8Array) => {
      columns.push(shifted(c.chunk, BigInt(this.sink.offset - c.start)));
      if (this.sink.index) out.push(this.sink.take());
      out.push(bytes.subarray(c.start, c.end));
      this.sink.offset += c.end - c.start;
    };
    pass(p.row, p.bytes);
    if (this.idType) {
      const id = this.idType === 'DOUBLE' ? p.idDouble : p.idString;
      if (id) pass(id, p.bytes);
      else {
        // A piece without ids in a part with an id column: its ids are null.
        const w = new ByteWriter();
        const schema = schemaOf(this.outputs, this.idType);
        const element = schema.find((e) => e.name === 'id')!;
        const { chunk } = writeColumn({
          writer: w,
          column: {
            columnName: 'id',
            element,
            schemaPath: [schema[0]!, element],
            ...PLAIN_COLUMN,
          },
          pageData: { values: new Array(p.rows).fill(null), definitionLevels: new Array<number>(p.rows).fill(0), repetitionLevels: [], maxDefinitionLevel: 1 },
        });
        pass({ start: 0, end: w.offset, chunk }, w.getBytes());
      }
    }
    for (const c of p.outputs) pass(c, p.bytes);
    let total = 0n;
    for (const c of columns) total += c.meta_data?.total_uncompressed_size ?? 0n;
    writer.row_groups.push({ columns, total_byte_size: total, num_rows: BigInt(p.rows), total_compressed_size: BigInt(this.sink.offset - groupStart) });
    writer.num_rows += BigInt(p.rows);
    return out;
  }

  /** The footer (the whole file when no piece came). */
  async end(): Promise<Uint8Array> {
    const writer = this.writer ?? this.open('none');
    await writer.finish();
    return this.sink.take();
  }
}

/** One Parquet file to join: its size and ranged reads. */
export interface ParquetFileSource {
  bytes: number;
  read(start: number, end: number): Promise<Uint8Array>;
  stream(start: number, end: number): Promise<AsyncIterable<Uint8Array>>;
}

/**
 * Parquet files of the same schema (a batch's parts, as the workers wrote them) as one file: their
 * row groups' bytes streamed as they are, the offsets in their metadata moved, one footer at the
 * end. Only the footers are parsed (metadataOf bounds them); a part of another schema is refused.
 */
export async function joinParquetFiles(files: ParquetFileSource[]): Promise<AsyncGenerator<Uint8Array>> {
  const metas = [];
  for (const f of files) metas.push(metadataOf(await readFooter((s, e) => f.read(s, e), f.bytes)));
  const schema = metas[0]?.schema;
  const same = JSON.stringify(schema, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
  for (const m of metas)
    if (JSON.stringify(m.schema, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) !== same)
      throw new ParquetShapeError('the parts have different columns (their ids differ in kind): download them one by one, or as JSONL');
  return joined(files, metas);
}

async function* joined(files: ParquetFileSource[], metas: ReturnType<typeof metadataOf>[]): AsyncGenerator<Uint8Array> {
  const schema = metas[0]?.schema;
  const sink = new DrainingWriter();
  const writer = new ParquetWriter({ writer: sink, schema: (schema ?? []) as never, codec: 'UNCOMPRESSED', statistics: false });
  yield sink.take();
  for (let i = 0; i < files.length; i++) {
    const f = files[i]!;
    const m = metas[i]!;
    if (!m.row_groups.length) continue;
    // A part's row groups lie between its "PAR1" and its footer, in order.
    let start = Infinity;
    let end = 0;
    for (const g of m.row_groups)
      for (const c of g.columns) {
        const md = c.meta_data!;
        const s = Number(md.dictionary_page_offset ?? md.data_page_offset);
        start = Math.min(start, s);
        end = Math.max(end, s + Number(md.total_compressed_size));
      }
    const by = BigInt(sink.offset - start);
    for (const g of m.row_groups) {
      writer.row_groups.push({ ...g, columns: g.columns.map((c) => shifted(c as never, by)) } as never);
      writer.num_rows += g.num_rows;
    }
    for await (const b of await f.stream(start, end)) yield b;
    sink.offset += end - start;
  }
  await writer.finish();
  yield sink.take();
}

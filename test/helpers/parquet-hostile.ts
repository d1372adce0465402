// Hostile Parquet files for the reader's bounds tests and fuzzer: a valid file taken apart into its
// footer and raw pages (headers as Thrift structs), changed, and put back together with offsets and
// page sizes recomputed (unless a test keeps its lie), the footer written by hyparquet-writer.
import { parquetMetadata, type FileMetaData } from 'hyparquet';
import { ByteWriter, parquetWriteBuffer } from 'hyparquet-writer';
import { writeMetadata } from 'hyparquet-writer/src/metadata.js';
import { serializeTCompactProtocol } from 'hyparquet-writer/src/thrift.js';
import { readStruct, type Struct } from '../../core/rows/parquet-thrift.ts';

export interface RawPage {
  /** The PageHeader as read: field_<id> -> value (parquet.thrift: 1 type, 2 uncompressed, 3 compressed, 5 v1, 7 dictionary, 8 v2). */
  header: Struct;
  body: Uint8Array;
}

export interface Layout {
  meta: FileMetaData;
  /** pages[rowGroup][column] */
  pages: RawPage[][][];
}

/** A small valid file: `x` FLOAT (dictionary-encoded: few distinct values), `id` INT32; one row group. */
export function smallFile(rows = 5): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      codec: 'UNCOMPRESSED',
      columnData: [
        { name: 'x', data: Float32Array.from({ length: rows }, (_, i) => (i % 2) + 1.5), type: 'FLOAT' },
        { name: 'id', data: Int32Array.from({ length: rows }, (_, i) => i), type: 'INT32' },
      ],
    }),
  );
}

export function disassemble(file: Uint8Array): Layout {
  const meta = parquetMetadata(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer);
  const pages = meta.row_groups.map((g) =>
    g.columns.map((c) => {
      const m = c.meta_data!;
      let at = Number(m.dictionary_page_offset || m.data_page_offset);
      const end = at + Number(m.total_compressed_size);
      const out: RawPage[] = [];
      while (at < end) {
        const { value, end: body } = readStruct(file, at, end);
        const size = value.field_3 as number;
        out.push({ header: value, body: file.slice(body, body + size) });
        at = body + size;
      }
      return out;
    }),
  );
  return { meta, pages };
}

export function pageHeaderBytes(h: Struct): Uint8Array {
  const w = new ByteWriter();
  serializeTCompactProtocol(w, h as never); // hyparquet reads and hyparquet-writer writes the same field_<id> form
  return new Uint8Array(w.getBuffer());
}

/** The file again; each page header's sizes follow its body unless `keepSizes`. */
export function assemble(l: Layout, opts: { keepSizes?: boolean } = {}): Uint8Array {
  const parts: Uint8Array[] = [Buffer.from('PAR1')];
  let at = 4;
  l.pages.forEach((group, gi) => {
    group.forEach((pages, ci) => {
      const m = l.meta.row_groups[gi]!.columns[ci]!.meta_data!;
      const start = at;
      let dataAt = -1;
      for (const p of pages) {
        const h = { ...p.header };
        if (!opts.keepSizes) {
          h.field_3 = p.body.length;
          if (m.codec === 'UNCOMPRESSED') h.field_2 = p.body.length;
        }
        if (dataAt < 0 && h.field_1 !== 2) dataAt = at;
        const head = pageHeaderBytes(h);
        parts.push(head, p.body);
        at += head.length + p.body.length;
      }
      m.dictionary_page_offset = pages[0]?.header.field_1 === 2 ? BigInt(start) : undefined;
      m.data_page_offset = BigInt(dataAt < 0 ? start : dataAt);
      m.total_compressed_size = BigInt(at - start);
      m.total_uncompressed_size = BigInt(at - start);
    });
  });
  const w = new ByteWriter();
  writeMetadata(w, l.meta as never); // hyparquet-writer's own copy of hyparquet's types
  const footer = new Uint8Array(w.getBuffer());
  const len = Buffer.alloc(4);
  len.writeUInt32LE(footer.length);
  parts.push(footer, len, Buffer.from('PAR1'));
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * The file with `n` empty structs appended to its footer as a list in field 5 (key_value_metadata):
 * a byte each, so a few MB of footer that a parser turns into millions of objects.
 */
export function withEmptyStructs(file: Uint8Array, n: number): Uint8Array {
  const len = Buffer.from(file.buffer, file.byteOffset, file.byteLength).readUInt32LE(file.length - 8);
  const footer = file.subarray(file.length - 8 - len, file.length - 9); // without its STOP byte
  const count: number[] = [];
  for (let v = n; ; v = Math.floor(v / 128)) {
    if (v < 128) {
      count.push(v);
      break;
    }
    count.push((v % 128) | 0x80);
  }
  // Field header with an explicit id (type 9, a list; zigzag 5 = 10), list header (size in a varint, element type 12, a struct).
  const extra = Buffer.concat([Buffer.from([0x09, 10, 0xfc, ...count]), Buffer.alloc(n), Buffer.from([0])]);
  const newFooter = Buffer.concat([footer, extra]);
  const tail = Buffer.alloc(8);
  tail.writeUInt32LE(newFooter.length);
  tail.write('PAR1', 4, 'latin1');
  return new Uint8Array(Buffer.concat([file.subarray(0, file.length - 8 - len), newFooter, tail]));
}

/** smallFile with its first v2 data page's body or header changed by `change`. */
export function withDataPage(change: (body: Uint8Array, v2: Struct) => Uint8Array | void): Uint8Array {
  const l = disassemble(smallFile());
  const page = l.pages[0]![0]!.find((q) => q.header.field_1 === 3)!;
  page.body = change(page.body, page.header.field_8 as Struct) ?? page.body;
  return assemble(l);
}

/**
 * The files of issue 25's cases, made from smallFile (one `x` FLOAT column): `spin`, dictionary
 * indices ending in a varint continuation byte (case 1: looped forever); `hugePage`, a page declaring
 * num_values=1e8 (case 6); `hugeRows`, a footer declaring 3e8 rows (case 2).
 */
export function hostileFiles(): { spin: Uint8Array; hugePage: Uint8Array; hugeRows: Uint8Array } {
  const spin = withDataPage((body, v2) => Uint8Array.from([...body.subarray(0, (v2.field_5 as number) + (v2.field_6 as number)), 1, 0x80]));
  const hugePage = withDataPage((_, v2) => {
    v2.field_1 = 100_000_000;
    v2.field_3 = 100_000_000;
  });
  const l = disassemble(smallFile());
  l.meta.num_rows = 300_000_000n;
  l.meta.row_groups[0]!.num_rows = 300_000_000n;
  return { spin, hugePage, hugeRows: assemble(l) };
}

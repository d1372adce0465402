// Mutations of valid Parquet files for the reader's fuzzer: byte-level (flips, truncations, runs of
// continuation bytes) and structural (page header fields, footer fields, page bodies, deep nesting),
// the structural ones through parquet-hostile.ts so offsets stay consistent unless the mutation lies.
import type { Struct } from '../../core/rows/parquet-thrift.ts';
import { HOSTILE_COUNTS, type Rand } from './fuzz.ts';
import { assemble, disassemble, type Layout } from './parquet-hostile.ts';

type Mutation = (file: Uint8Array, r: Rand) => Uint8Array;

const count = (r: Rand) => (r() < 0.7 ? r.pick(HOSTILE_COUNTS) : r.int(0, 4096));

function flip(file: Uint8Array, r: Rand): Uint8Array {
  const out = file.slice();
  for (let k = r.int(1, 8); k > 0; k--) {
    const i = r.int(0, out.length - 1);
    out[i] = out[i]! ^ r.int(1, 255);
  }
  return out;
}

function truncate(file: Uint8Array, r: Rand): Uint8Array {
  const at = r.int(0, file.length - 1);
  if (r() < 0.5) return file.slice(0, at);
  // Cut a stretch out of the middle and keep the footer: every offset after it now points wrong.
  const len = Buffer.from(file.buffer, file.byteOffset, file.byteLength).readUInt32LE(file.length - 8);
  const footerAt = file.length - 8 - len;
  const from = r.int(4, Math.max(4, footerAt - 1));
  const to = r.int(from, footerAt);
  return new Uint8Array(Buffer.concat([file.subarray(0, from), file.subarray(to)]));
}

function structural(change: (l: Layout, r: Rand) => void): Mutation {
  return (file, r) => {
    const l = disassemble(file);
    change(l, r);
    return assemble(l, { keepSizes: r() < 0.3 });
  };
}

const anyPage = (l: Layout, r: Rand) => r.pick(r.pick(r.pick(l.pages)));

/** A page header field (sizes, type) or one of its body's (num_values, encodings, v2 level lengths) set to a hostile count. */
const headerField = structural((l, r) => {
  const p = anyPage(l, r);
  if (r() < 0.3) {
    p.header[`field_${r.pick([1, 2, 3])}`] = r() < 0.5 ? count(r) : r.int(0, 9);
    return;
  }
  const body = [5, 7, 8].map((id) => p.header[`field_${id}`]).find((v) => v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)) as
    Struct | undefined;
  if (body) body[`field_${r.pick([1, 2, 3, 4, 5, 6])}`] = r() < 0.5 ? count(r) : r.int(0, 9); // encodings are 0-9
});

/** A footer field: rows, a schema element's children, type or repetition, a column chunk's codec or offsets. */
const footerField = structural((l, r) => {
  const g = r.pick(l.meta.row_groups);
  const c = r.pick(g.columns).meta_data!;
  const e = r.pick(l.meta.schema);
  const n = count(r);
  const big = BigInt(n);
  switch (r.int(0, 7)) {
    case 0:
      g.num_rows = big;
      l.meta.num_rows = big;
      break;
    case 1:
      e.num_children = n;
      break;
    case 2:
      e.repetition_type = r.pick(['REQUIRED', 'OPTIONAL', 'REPEATED'] as const);
      break;
    case 3:
      e.type = r.pick(['BOOLEAN', 'INT32', 'INT64', 'INT96', 'FLOAT', 'DOUBLE', 'BYTE_ARRAY', 'FIXED_LEN_BYTE_ARRAY'] as const);
      break;
    case 4:
      c.codec = r.pick(['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'ZSTD', 'LZ4_RAW', 'BROTLI'] as const);
      break;
    case 5:
      c.encodings = [r.pick(['PLAIN', 'RLE', 'DELTA_BINARY_PACKED', 'BYTE_STREAM_SPLIT', 'RLE_DICTIONARY'] as const)];
      break;
    default:
      // Offsets and sizes are recomputed by assemble; lie about them afterwards by flipping instead.
      c.num_values = big;
  }
});

/** A page body replaced by random bytes, or by a run header of continuation bytes (the RLE reader's old spin). */
const pageBody = structural((l, r) => {
  const p = anyPage(l, r);
  if (r() < 0.5) p.body = r.bytes(r.int(0, 64));
  else {
    const keep = r.int(0, p.body.length);
    p.body = Uint8Array.from([...p.body.subarray(0, keep), ...Array<number>(r.int(1, 12)).fill(0xff)]);
  }
});

/** A page header that nests structs thousands deep. */
const deepHeader = structural((l, r) => {
  const p = anyPage(l, r);
  let s: Struct = {};
  for (let i = r.int(20, 3000); i > 0; i--) s = { field_1: s };
  p.header.field_9 = s;
});

/** A schema that nests groups hundreds deep (each with one child). */
const deepSchema = structural((l, r) => {
  const depth = r.int(40, 2000);
  const chain = Array.from({ length: depth }, (_, i) => ({ name: `g${i}`, num_children: 1, repetition_type: 'OPTIONAL' as const }));
  const [root, ...rest] = l.meta.schema;
  l.meta.schema = [{ ...root!, num_children: (root!.num_children ?? 0) + 1 }, ...rest, ...chain, { name: 'leaf', type: 'FLOAT', repetition_type: 'OPTIONAL' }];
});

const MUTATIONS: [string, Mutation][] = [
  ['flip', flip],
  ['truncate', truncate],
  ['headerField', headerField],
  ['footerField', footerField],
  ['pageBody', pageBody],
  ['deepHeader', deepHeader],
  ['deepSchema', deepSchema],
];

/** One to three mutations of `file`; the names of those applied. */
export function mutate(file: Uint8Array, r: Rand): { file: Uint8Array; applied: string[] } {
  const applied: string[] = [];
  let f = file;
  for (let k = r.int(1, r() < 0.8 ? 1 : 3); k > 0; k--) {
    const [name, m] = r.pick(MUTATIONS);
    try {
      f = m(f, r);
      applied.push(name);
    } catch {
      // A structural mutation of a file an earlier one already broke: flip bytes instead.
      f = flip(f, r);
      applied.push('flip');
    }
  }
  return { file: f, applied };
}

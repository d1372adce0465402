// Batch output in CSV or Parquet, encoded where the rows are scored (an engine thread) straight
// from the run's output tensors: no JSON text parsed back, no object per row. A segment's rows
// become CSV lines (and the header they imply) or one Parquet row group (column chunks encoded by
// hyparquet-writer, offsets counted from the piece's start); the worker's main thread only joins
// the pieces of a part in order (core/rows/parquet-stitch.ts). Same columns as the JSONL converters
// (to-csv.ts, to-parquet.ts), so a part reads the same whichever path wrote it.
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
import { writeColumn } from 'hyparquet-writer/src/column.js';
import { elementCount, type RawTensor, type TensorSpec } from '../tensors.ts';
import { outputColumnNames } from './output-columns.ts';
import { ownBytes, type RowRef } from './output-lines.ts';
import { canWriteFast, writeNumbers, writeOptional } from './parquet-write.ts';
import { schemaOf } from './to-parquet.ts';

type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];
/** A column chunk's metadata, as hyparquet-writer writes it. */
export type ColumnChunk = ReturnType<typeof writeColumn>['chunk'];

/** How output columns are written (here and when parts are joined, core/rows/parquet-stitch.ts): uncompressed, plain, no statistics or indexes. */
export const PLAIN_COLUMN = {
  codec: 'UNCOMPRESSED',
  compressors: {},
  stats: false,
  pageSize: 1 << 20,
  columnIndex: false,
  offsetIndex: false,
  encoding: 'PLAIN',
} as const;

export interface EncodeSpec {
  format: 'csv' | 'parquet';
  outputs: TensorSpec[];
  /** CSV: the model's classes name its per-class columns (core/jobs/batch.ts csvClasses). */
  classes?: { values: (string | number)[]; outputs: string[] };
}

/** One column chunk of a piece: bytes [start, end) of `bytes`, its metadata with offsets counted from there. */
export interface ColumnPiece {
  start: number;
  end: number;
  chunk: ColumnChunk;
}

export type EncodedPiece =
  | { format: 'csv'; rows: number; header: string; body: Uint8Array }
  | {
      format: 'parquet';
      rows: number;
      /** The kind of the piece's first row's id: a part's first piece decides its id column (as the JSONL converter does). */
      firstId: 'none' | 'number' | 'string';
      bytes: Uint8Array;
      row: ColumnPiece;
      outputs: ColumnPiece[];
      /** The id column both ways, the part's choice taken when joined (absent when no row has an id). */
      idDouble?: ColumnPiece;
      idString?: ColumnPiece;
    };

/** One run's outputs, kept until the segment ends. */
interface Run {
  refs: readonly RowRef[];
  a: number;
  b: number;
  from: number;
  data: ArrayLike<unknown>[];
}

const num = (x: number) => (Number.isFinite(x) ? String(x) : '');
const csvCell = (s: string) => (/[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** An id's JSON text as a CSV cell: a string's own text, anything else its JSON. */
function idCell(id: string): string {
  if (!id || id === 'null') return '';
  if (id.charCodeAt(0) !== 0x22) return csvCell(id);
  return csvCell(id.includes('\\') ? (JSON.parse(id) as string) : id.slice(1, -1));
}

/** Collects a segment's scored rows (in the order they are run) and encodes them at the end. */
export class OutputEncoder {
  private readonly runs: Run[] = [];
  private rows = 0;
  private readonly pers: number[] = [];

  constructor(private readonly spec: EncodeSpec) {}

  /** Rows refs[a, b), whose outputs are rows [from, from + b - a) of `result`. */
  add(refs: readonly RowRef[], a: number, b: number, result: Record<string, RawTensor>, from = 0): void {
    if (b <= a) return;
    const data = this.spec.outputs.map((o, j) => {
      const t = result[o.name];
      if (!t) throw new Error(`the model gave no output "${o.name}"`);
      const per = elementCount(t.dims.slice(1));
      if (this.pers[j] === undefined) this.pers[j] = per;
      else if (this.pers[j] !== per) throw new Error(`output "${o.name}" has ${per} values per row here, ${this.pers[j]} before`);
      return t.data as ArrayLike<unknown>;
    });
    this.runs.push({ refs, a, b, from, data });
    this.rows += b - a;
  }

  /** The rows in input order: [run, row in its refs, row in its outputs]. */
  private order(): [Run, number, number][] {
    const out: [Run, number, number][] = [];
    for (const run of this.runs) for (let r = run.a; r < run.b; r++) out.push([run, r, run.from + r - run.a]);
    let sorted = true;
    for (let i = 1; i < out.length && sorted; i++) if (out[i]![0].refs[out[i]![1]]!.n < out[i - 1]![0].refs[out[i - 1]![1]]!.n) sorted = false;
    if (!sorted) out.sort((x, y) => x[0].refs[x[1]]!.n - y[0].refs[y[1]]!.n);
    return out;
  }

  finish(): EncodedPiece {
    return this.spec.format === 'csv' ? this.csv() : this.parquet();
  }

  private csv(): EncodedPiece {
    const { outputs, classes } = this.spec;
    const header =
      ['row', 'id', ...outputs.flatMap((o, j) => outputColumnNames(o.name, this.pers[j] ?? 0, classes?.outputs.includes(o.name) ? classes.values : undefined))]
        .map(csvCell)
        .join(',') + '\n';
    let text = '';
    for (const [run, r, i] of this.order()) {
      const ref = run.refs[r]!;
      text += `${ref.n},${idCell(ref.id)}`;
      for (let j = 0; j < outputs.length; j++) {
        const per = this.pers[j]!;
        const d = run.data[j]!;
        for (let k = i * per, e = k + per; k < e; k++) {
          const v = d[k];
          text += typeof v === 'number' ? `,${num(v)}` : typeof v === 'bigint' ? `,${num(Number(v))}` : `,${csvCell(String(v))}`;
        }
      }
      text += '\n';
    }
    return { format: 'csv', rows: this.rows, header, body: ownBytes(text) };
  }

  private parquet(): EncodedPiece {
    const order = this.order();
    const n = order.length;
    const writer = new ByteWriter();
    const ids = order.map(([run, r]) => run.refs[r]!.id);
    const schema = schemaOf(this.spec.outputs, 'DOUBLE');
    const stringSchema = schemaOf(this.spec.outputs, 'STRING');
    const leafPath = (s: SchemaElement[], name: string): SchemaElement[] => {
      const i = s.findIndex((e) => e.name === name);
      const e = s[i]!;
      return e.num_children ? [s[0]!, e, s[i + 1]!, s[i + 2]!] : [s[0]!, e];
    };
    const column = (path: SchemaElement[], values: ArrayLike<unknown>, def: Uint8Array, rep: Uint8Array, maxDef: number): ColumnPiece => {
      const start = writer.offset;
      const { chunk } = writeColumn({
        writer,
        column: {
          columnName: path
            .slice(1)
            .map((e) => e.name)
            .join('.'),
          element: path.at(-1)!,
          schemaPath: path,
          ...PLAIN_COLUMN,
        },
        pageData: { values: values as never, definitionLevels: def as never, repetitionLevels: rep as never, maxDefinitionLevel: maxDef },
      });
      return { start, end: writer.offset, chunk };
    };
    const none = new Uint8Array(0);
    // Columns written straight from typed arrays (parquet-write.ts) where they can be; writeColumn otherwise.
    const fast = canWriteFast;
    const piece$ = (chunk: ColumnChunk, start: number): ColumnPiece => ({ start, end: writer.offset, chunk });
    const row = fast
      ? piece$(
          writeNumbers(
            writer,
            { path: ['row'], type: 'INT64', list: false, maxDef: 0 },
            Float64Array.from(order, ([run, r]) => run.refs[r]!.n),
            n,
            1,
          ),
          0,
        )
      : column(
          leafPath(schema, 'row'),
          BigInt64Array.from(order, ([run, r]) => BigInt(run.refs[r]!.n)),
          none,
          none,
          0,
        );
    const outputs = this.spec.outputs.map((o, j) => {
      const per = this.pers[j] ?? 0;
      const path = leafPath(schema, o.name);
      const leaf = path.at(-1)!;
      const values = leaf.type === 'FLOAT' ? new Float32Array(n * per) : leaf.type === 'DOUBLE' ? new Float64Array(n * per) : new Array<string>(n * per);
      order.forEach(([run, , i], r) => {
        const d = run.data[j]!;
        if (Array.isArray(values)) for (let k = 0; k < per; k++) values[r * per + k] = String(d[i * per + k]);
        else if (ArrayBuffer.isView(d) && !(d instanceof BigInt64Array || d instanceof BigUint64Array))
          values.set((d as Float32Array).subarray(i * per, (i + 1) * per), r * per);
        else for (let k = 0; k < per; k++) values[r * per + k] = Number(d[i * per + k]);
      });
      if (fast && !Array.isArray(values) && (path.length === 2 ? per === 1 : per > 0)) {
        const start = writer.offset;
        const col = { path: path.slice(1).map((e) => e.name), type: leaf.type as 'FLOAT' | 'DOUBLE', list: path.length > 2, maxDef: path.length > 2 ? 2 : 1 };
        return piece$(writeNumbers(writer, col, values, n, per), start);
      }
      if (path.length === 2) return column(path, values, new Uint8Array(n).fill(1), none, 1);
      // A list per row: every element present (definition 2), repetition 0 at each row's first.
      const rep = new Uint8Array(n * per).fill(1);
      for (let r = 0; r < n; r++) rep[r * per] = 0;
      return column(path, values, new Uint8Array(n * per).fill(2), per ? rep : none, 2);
    });
    const piece: EncodedPiece = { format: 'parquet', rows: n, firstId: idKind(ids[0] ?? ''), bytes: new Uint8Array(0), row, outputs };
    if (ids.some((id) => idKind(id) !== 'none')) {
      // As the JSONL converter: a DOUBLE id column keeps numbers (anything else null), a STRING one strings (anything else its JSON).
      const asNumber = ids.map((id) => (idKind(id) === 'number' ? Number(id) : null));
      const asText = ids.map((id) => (idKind(id) === 'none' ? null : id.charCodeAt(0) === 0x22 ? (JSON.parse(id) as string) : id));
      const defOf = (v: unknown[]) => Uint8Array.from(v, (x) => (x === null ? 0 : 1));
      if (fast) {
        let start = writer.offset;
        piece.idDouble = piece$(writeOptional(writer, { path: ['id'], type: 'DOUBLE' }, asNumber), start);
        start = writer.offset;
        piece.idString = piece$(writeOptional(writer, { path: ['id'], type: 'BYTE_ARRAY' }, asText), start);
      } else {
        piece.idDouble = column(leafPath(schema, 'id'), asNumber, defOf(asNumber), none, 1);
        piece.idString = column(leafPath(stringSchema, 'id'), asText, defOf(asText), none, 1);
      }
    }
    piece.bytes = writer.getBytes();
    return piece;
  }
}

/** What a row's id (its JSON text) is: none (absent or null), a number, or anything else (written as a string). */
function idKind(id: string): 'none' | 'number' | 'string' {
  if (!id || id === 'null') return 'none';
  const c = id.charCodeAt(0);
  return c === 0x2d || (c >= 0x30 && c <= 0x39) ? 'number' : 'string';
}

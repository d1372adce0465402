// The shape of parsed Parquet metadata, checked before anything walks it: hyparquet builds the
// schema tree recursively from `num_children` (a lie there reads past the list, a chain of
// thousands overflows the stack) and leaves field types as the file wrote them, so a footer that
// parsed can still hold a list where a number belongs. After this, the readers may trust its types.
import type { FileMetaData } from 'hyparquet';
import { ParquetShapeError } from './parquet-errors.ts';

/** Nesting of the schema: a list of lists of structs is a handful; this leaves room and no more. */
export const MAX_SCHEMA_DEPTH = 32;

const isCount = (v: unknown) => (typeof v === 'bigint' || typeof v === 'number') && Number.isSafeInteger(Number(v)) && Number(v) >= 0;

export function checkMetadata(meta: FileMetaData): void {
  const schema = meta.schema;
  if (!Array.isArray(schema) || schema.length === 0) throw new ParquetShapeError('not a Parquet file: the footer has no schema');
  // Walk the flattened tree with a stack of children still owed at each level.
  const owed: number[] = [];
  for (let i = 0; i < schema.length; i++) {
    if (i > 0 && owed.length === 0) throw new ParquetShapeError(`the schema lists ${schema.length} elements; its root holds ${i}`);
    const e = schema[i]!;
    if (typeof e !== 'object' || e === null || typeof e.name !== 'string') throw new ParquetShapeError(`schema element ${i} has no name`);
    if (owed.length) owed[owed.length - 1]!--;
    const n = e.num_children ?? 0;
    if (!Number.isSafeInteger(n) || n < 0 || n > schema.length - i - 1)
      throw new ParquetShapeError(`schema element "${e.name}" declares ${n} children; ${schema.length - i - 1} elements follow it`);
    if (n > 0) {
      owed.push(n);
      if (owed.length > MAX_SCHEMA_DEPTH) throw new ParquetShapeError(`the schema nests more than ${MAX_SCHEMA_DEPTH} levels deep`);
    }
    while (owed.length && owed[owed.length - 1] === 0) owed.pop();
  }
  if (owed.length) throw new ParquetShapeError('the schema ends before its elements have all their children');
  if (!Array.isArray(meta.row_groups)) throw new ParquetShapeError('the footer has no list of row groups');
  meta.row_groups.forEach((g, gi) => {
    if (!isCount(g.num_rows) || !Array.isArray(g.columns)) throw new ParquetShapeError(`row group ${gi} has no num_rows or columns`);
    for (const c of g.columns) {
      const m = c?.meta_data;
      if (!m) continue; // rowGroupChunks names it
      const ok =
        Array.isArray(m.path_in_schema) &&
        m.path_in_schema.every((p) => typeof p === 'string') &&
        Array.isArray(m.encodings) &&
        typeof m.codec === 'string' &&
        typeof m.type === 'string' &&
        isCount(m.data_page_offset) &&
        isCount(m.total_compressed_size) &&
        (m.dictionary_page_offset === undefined || isCount(m.dictionary_page_offset));
      if (!ok) throw new ParquetShapeError(`row group ${gi} has a column chunk whose metadata is malformed`);
    }
  });
}

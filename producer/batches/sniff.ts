// A batch file's format is recognised from its first bytes, not assumed: Parquet by its magic
// bytes, JSONL by a JSON object on its first line, CSV by a header line of text. What the client
// declared (the `format` parameter, else the content type, else the file name) must agree with the
// bytes; when it does not, the upload is refused naming both, rather than accepted as a batch of
// rows that all fail.
import { badRequest } from '../../core/errors.ts';
import type { RowFormat } from '../../core/rows/scanner.ts';

export type BatchFormat = RowFormat | 'parquet';

/** A format the client stated, and how (for messages): `format=csv`, `content-type text/csv`, `file name rows.csv`. */
export interface Declared {
  format: BatchFormat;
  by: string;
}

const NAMES: Record<BatchFormat, string> = { jsonl: 'JSONL', csv: 'CSV', parquet: 'Parquet' };

/** Bytes read before deciding: enough for Parquet's magic, a JSONL row's first character, and a look for binary data. */
export const SNIFF_BYTES = 4096;

const CONTENT_TYPES: Record<string, BatchFormat> = {
  'text/csv': 'csv',
  'application/csv': 'csv',
  'application/vnd.ms-excel': 'csv', // what some browsers send for a .csv file
  'application/vnd.apache.parquet': 'parquet',
  'application/x-parquet': 'parquet',
  'application/x-ndjson': 'jsonl',
  'application/ndjson': 'jsonl',
  'application/jsonl': 'jsonl',
  'application/x-jsonlines': 'jsonl',
  'application/jsonlines': 'jsonl',
  'application/json-lines': 'jsonl',
  'application/json': 'jsonl',
};

/** The format a content type declares; null for types that say nothing about it (octet-stream, form-urlencoded: curl's default, text/plain). */
export function declaredByContentType(contentType: string | undefined): Declared | null {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const format = CONTENT_TYPES[type];
  return format ? { format, by: `content-type ${type}` } : null;
}

/** The format a file name's extension declares, or null. */
export function declaredByFileName(name: string | undefined): Declared | null {
  const m = /\.(csv|parquet|pq|jsonl|ndjson|json)$/i.exec(name ?? '');
  if (!m) return null;
  const ext = m[1]!.toLowerCase();
  const format: BatchFormat = ext === 'csv' ? 'csv' : ext === 'parquet' || ext === 'pq' ? 'parquet' : 'jsonl';
  return { format, by: `file name ${JSON.stringify(name!.slice(-100))}` };
}

const ONE_LINE =
  'JSON objects one after another on one line (`}{`): its newlines were stripped, as `curl -d @file` does; send the file with `curl --data-binary @file`';

/**
 * Whether the JSON object starting at `start` is followed, on the same line, by another object:
 * JSONL whose newlines were removed (`curl -d @rows.jsonl` strips them). Braces inside strings do
 * not count; an object not closed within the bytes seen says nothing.
 */
function objectThenObject(b: Buffer, start: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = start; i < b.length; i++) {
    const c = b[i]!;
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (--depth > 0) continue;
      let j = i + 1;
      while (j < b.length && (b[j] === 0x20 || b[j] === 0x09)) j++;
      return b[j] === 0x7b;
    } else if (c === 0x0a) return false;
  }
  return false;
}

/** What the first bytes are: a format, or null with a description of what they are instead. `empty` when there are none but whitespace. */
export function sniff(head: Uint8Array): { format: BatchFormat | null; what: string; empty?: boolean } {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.subarray(0, 4).toString('latin1') === 'PAR1') return { format: 'parquet', what: 'Parquet (the magic bytes PAR1)' };
  if (b[0] === 0x1f && b[1] === 0x8b) return { format: null, what: 'gzip-compressed (decompress it first)' };
  if (b.subarray(0, 4).toString('latin1') === 'PK\x03\x04') return { format: null, what: 'a ZIP archive (unpack it first)' };
  if ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff)) return { format: null, what: 'UTF-16 text (save it as UTF-8)' };
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0; // UTF-8 byte order mark
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0d || b[i] === 0x0a)) i++;
  if (i === b.length) return { format: null, what: 'empty', empty: true };
  if (b.indexOf(0) >= 0) return { format: null, what: 'binary data, not text' };
  if (b[i] === 0x7b) {
    if (objectThenObject(b, i)) return { format: null, what: ONE_LINE };
    return { format: 'jsonl', what: 'JSONL (the first line is a JSON object)' };
  }
  if (b[i] === 0x5b) return { format: null, what: 'a JSON array; batches take JSONL, one JSON object per line' };
  return { format: 'csv', what: 'CSV (the first line is not JSON: read as a header of column names)' };
}

/** The format to read the file as, from its first bytes and what was declared; a 400 when they disagree or the bytes are none of the three. */
export function decideFormat(head: Uint8Array, declared: Declared | null): BatchFormat {
  const seen = sniff(head);
  // An empty file is refused later, with the other files without rows.
  if (seen.empty) return declared?.format ?? 'jsonl';
  if (declared && seen.format !== declared.format) {
    const notIt = declared.format === 'parquet' ? ' is not a Parquet file:' : '';
    throw badRequest(
      `the file was declared ${NAMES[declared.format]} (${declared.by}) but${notIt} its bytes are ${seen.what}` +
        (seen.format ? `; send it as ${seen.format} (format=${seen.format}), or without a format to have it recognised` : ''),
    );
  }
  if (!seen.format) throw badRequest(`cannot read the file: its bytes are ${seen.what}; a batch file is JSONL, CSV or Parquet`);
  return seen.format;
}

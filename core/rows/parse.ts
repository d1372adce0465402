// Turns the rows of a batch file into model inputs. JSONL: one object per line whose keys are the
// model's input names (values flat or nested, without the batch dimension) and an optional `id`.
// CSV: a header row; the columns named as the inputs feed inputs of one value per row (strings for
// BYTES inputs), else the columns, in order, feed a model with a single 2-D input; an optional `id`
// column is echoed. A row that cannot be used gets an error naming what is wrong. For a column-input
// model (core/rows/columns.ts) an empty cell, null, "NaN" or an absent key is a missing value.
import { parse as parseCsv } from 'csv-parse/sync';
import { elementCount, flattenData, type Datatype, type TensorSpec } from '../tensors.ts';
import { isColumnInput, isFloat, isMissingText, missingValue, oneValuePerRow, withMissing } from './columns.ts';
import type { RowFormat } from './scanner.ts';

export interface ParsedRow {
  id?: unknown;
  /** Flat values per input name. */
  values: Record<string, (number | string | boolean)[]>;
  /** Shape per input, without the batch dimension. */
  shapes: Record<string, number[]>;
}
export interface RowError {
  id?: unknown;
  error: { code: string; message: string };
}
export type RowParser = (line: string) => ParsedRow | RowError;

const bad = (message: string, id?: unknown): RowError => ({ ...(id !== undefined ? { id } : {}), error: { code: 'bad_row', message } });

/**
 * Splits one CSV line (no newline inside unless quoted). Never throws: a quote left open (found by
 * the segmenter fuzzer: csv-parse throws "Quote Not Closed") closes at the end of the line, so the
 * row gets an error naming its values rather than failing its chunk.
 */
export function csvFields(line: string, delimiter: CsvDelimiter = ','): string[] {
  if (!line.includes('"')) return line.split(delimiter);
  for (const text of [line, `${line}"`]) {
    try {
      return (parseCsv(text, { delimiter, relax_column_count: true, relax_quotes: true }) as string[][])[0] ?? [];
    } catch {
      // next: the quote closed at the end
    }
  }
  return line.split(delimiter);
}

/** A CSV field separator: the comma, or what spreadsheets in decimal-comma locales (`;`) and other tools write. */
export type CsvDelimiter = ',' | ';' | '|' | '\t';

/** The column names of a CSV header, trimmed, without the byte order mark spreadsheet programs write first. */
export const csvColumns = (header: string, delimiter: CsvDelimiter = ','): string[] => csvFields(header.replace(/^\uFEFF/, ''), delimiter).map((c) => c.trim());

/** The shape of nested arrays, or null when ragged. */
function nestedShape(v: unknown): number[] | null {
  const shape: number[] = [];
  let cur = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  return shape;
}

const NUMERIC = ['FP32', 'FP64', 'FP16', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64'];

/**
 * How CSV columns feed the model. `named`: every input takes one value per row (a string for a
 * BYTES input, such as a text model's) from the column named as it; other columns are ignored.
 * `positional`: the columns, in order, feed a model with a single 2-D numeric input.
 */
type CsvPlan = { mode: 'named'; columns: number[] } | { mode: 'positional' };

function csvPlan(cols: string[], inputs: TensorSpec[]): CsvPlan | string {
  const named = inputs.map((s) => cols.indexOf(s.name));
  if (inputs.length && inputs.every(oneValuePerRow) && named.every((c) => c >= 0)) {
    const bad = inputs.find((s) => s.datatype !== 'BYTES' && s.datatype !== 'BOOL' && !NUMERIC.includes(s.datatype));
    if (bad) return `the model's input "${bad.name}" is ${bad.datatype}, which CSV cannot carry: use JSONL`;
    return { mode: 'named', columns: named };
  }
  if (inputs.length !== 1 || inputs[0]!.shape.length !== 2 || !NUMERIC.includes(inputs[0]!.datatype)) {
    const missing = inputs.filter((s, i) => named[i]! < 0).map((s) => `"${s.name}"`);
    if (missing.length && inputs.every(oneValuePerRow))
      return `the CSV header has no column ${missing.join(', ')} (the model's input${missing.length > 1 ? 's' : ''})`;
    return `CSV feeds a model with a single 2-D numeric input, or inputs of one value per row from the columns named as them; this model takes ${inputs
      .map((i) => `"${i.name}" ${i.datatype} [${i.shape.join(',')}]`)
      .join(', ')}: use JSONL`;
  }
  const features = cols.filter((c) => c !== 'id').length;
  const want = inputs[0]!.shape[1]!;
  if (want >= 0 && features !== want) return `the CSV header has ${features} feature columns, the model's input "${inputs[0]!.name}" takes ${want}`;
  return { mode: 'positional' };
}

/** Checks the CSV header against the model at submit time; returns a message when it cannot work. */
export function checkCsvHeader(header: string, inputs: TensorSpec[], delimiter: CsvDelimiter = ','): string | null {
  const cols = csvColumns(header, delimiter);
  const plan = csvPlan(cols, inputs);
  if (typeof plan !== 'string') return null;
  // A spreadsheet saved with `;` (a decimal-comma locale), `|` or tabs gives one long column name:
  // say so, since "the header has 1 feature columns" alone does not explain it.
  const other = cols.length === 1 ? OTHER_SEPARATORS.find((s) => header.includes(s.char)) : undefined;
  return other && delimiter === ','
    ? `${plan}; the header line is separated by ${other.name}, not commas: send delimiter=${other.param} (or save the file with commas)`
    : plan;
}

const OTHER_SEPARATORS = [
  { char: ';', name: '";"', param: ';' },
  { char: '\t', name: 'tabs', param: 'tab' },
  { char: '|', name: '"|"', param: '|' },
];

/** The header's columns that feed no input (a target, notes), `id` aside: none when the columns feed a 2-D input in order. */
export function csvIgnoredColumns(header: string, inputs: TensorSpec[], delimiter: CsvDelimiter = ','): string[] {
  const cols = csvColumns(header, delimiter);
  const plan = csvPlan(cols, inputs);
  if (typeof plan === 'string' || plan.mode === 'positional') return [];
  const used = new Set(plan.columns);
  return cols.filter((c, i) => !used.has(i) && c !== 'id');
}

/** The keys of a JSONL file's first row (`head`: the file's first bytes) that feed no input, `id` aside. */
export function jsonlIgnoredKeys(head: Uint8Array, inputs: TensorSpec[]): string[] {
  const text = Buffer.from(head.buffer, head.byteOffset, head.byteLength).toString('utf8');
  const nl = text.indexOf('\n');
  try {
    const first: unknown = JSON.parse(nl >= 0 ? text.slice(0, nl) : text);
    if (typeof first !== 'object' || first === null || Array.isArray(first)) return [];
    const names = new Set(inputs.map((s) => s.name));
    return Object.keys(first).filter((k) => !names.has(k) && k !== 'id');
  } catch {
    return []; // a first row longer than the bytes read, or not JSON: that row's error says so
  }
}

export function rowParser(format: RowFormat, inputs: TensorSpec[], header?: string, delimiter: CsvDelimiter = ','): RowParser {
  return format === 'csv' ? csvParser(inputs, header ?? '', delimiter) : jsonlParser(inputs);
}

function jsonlParser(inputs: TensorSpec[]): RowParser {
  const columns = isColumnInput(inputs);
  return (line) => {
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      return bad(`not valid JSON: ${(e as Error).message}`);
    }
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return bad("a row must be a JSON object with the model's input names as keys");
    const rec = obj as Record<string, unknown>;
    const id = rec.id;
    const values: ParsedRow['values'] = {};
    const shapes: ParsedRow['shapes'] = {};
    for (const spec of inputs) {
      // A column-input model's absent key or null is a missing value, fed as the graph expects it.
      const v = columns ? withMissing(spec, rec[spec.name]) : rec[spec.name];
      if (v === undefined) return bad(`missing input "${spec.name}"`, id);
      const rowShape = spec.shape.slice(1);
      let shape: number[];
      if (rowShape.every((d) => d >= 0)) {
        shape = rowShape;
      } else {
        const ns = Array.isArray(v) ? nestedShape(v) : [];
        if (!ns || ns.length !== rowShape.length)
          return bad(`input "${spec.name}" must be nested to rank ${rowShape.length} (the model leaves a dimension open)`, id);
        shape = ns;
      }
      // A bare value also fills an input of one value per row ([N, 1]): {"text": "..."}.
      const scalar = rowShape.length === 0 || (!Array.isArray(v) && oneValuePerRow(spec));
      const data = scalar ? [v] : Array.isArray(v) && columns ? v.map((x) => withMissing(spec, x)) : v;
      const flat = flattenData(data, scalar ? [1] : shape, spec.datatype as Datatype, `input "${spec.name}"`, columns);
      if ('error' in flat) return bad(flat.error, id);
      values[spec.name] = flat.data;
      shapes[spec.name] = shape;
    }
    return id !== undefined ? { id, values, shapes } : { values, shapes };
  };
}

function csvParser(inputs: TensorSpec[], header: string, delimiter: CsvDelimiter): RowParser {
  const cols = csvColumns(header, delimiter);
  const idCol = cols.indexOf('id');
  const plan = csvPlan(cols, inputs);
  if (typeof plan === 'string') return () => bad(plan);
  const count = (fields: string[]) => (fields.length !== cols.length ? `has ${fields.length} columns, the header has ${cols.length}` : null);
  if (plan.mode === 'named') {
    // Every input takes one value per row here: an empty or "NaN" cell of a float column is missing.
    const missing = inputs.map((s) => (isFloat(s) ? missingValue(s) : undefined));
    return (line) => {
      const fields = csvFields(line, delimiter);
      const id = idCol >= 0 ? fields[idCol] : undefined;
      const wrong = count(fields);
      if (wrong) return bad(wrong, id);
      const values: ParsedRow['values'] = {};
      const shapes: ParsedRow['shapes'] = {};
      for (const [j, spec] of inputs.entries()) {
        const f = fields[plan.columns[j]!]!;
        const m = missing[j];
        const v =
          spec.datatype === 'BYTES'
            ? f
            : m !== undefined && isMissingText(f)
              ? m
              : spec.datatype === 'BOOL'
                ? boolOf(f)
                : numberOf(f, !spec.datatype.startsWith('FP'));
        if (v === null)
          return bad(`column "${spec.name}" is not ${spec.datatype === 'BOOL' ? 'a boolean' : 'a number'}: ${JSON.stringify(f.slice(0, 40))}`, id);
        const flat = flattenData([v], [1], spec.datatype, `column "${spec.name}"`, true);
        if ('error' in flat) return bad(flat.error, id);
        values[spec.name] = flat.data;
        shapes[spec.name] = spec.shape.slice(1);
      }
      return { ...(id !== undefined ? { id } : {}), values, shapes };
    };
  }
  const spec = inputs[0]!;
  const width = cols.length - (idCol >= 0 ? 1 : 0);
  const integer = !spec.datatype.startsWith('FP');
  return (line) => {
    const fields = csvFields(line, delimiter);
    const id = idCol >= 0 ? fields[idCol] : undefined;
    const wrong = count(fields);
    if (wrong) return bad(wrong, id);
    const data = new Array<number>(width);
    let k = 0;
    for (let c = 0; c < fields.length; c++) {
      if (c === idCol) continue;
      const f = fields[c]!;
      const x = numberOf(f, integer);
      if (x === null) return bad(`column "${cols[c]}" is not ${integer ? 'an integer' : 'a number'}: ${JSON.stringify(f.slice(0, 40))}`, id);
      data[k++] = x;
    }
    return { ...(id !== undefined ? { id } : {}), values: { [spec.name]: data }, shapes: { [spec.name]: [width] } };
  };
}

function numberOf(f: string, integer: boolean): number | null {
  const x = Number(f);
  return f.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x)) ? null : x;
}
const boolOf = (f: string): boolean | null => ({ true: true, false: false, '1': true, '0': false })[f.trim().toLowerCase()] ?? null;

export { elementCount };

// The rows a compression request uploaded (`samples`: JSONL, CSV or Parquet), read as the batch path
// reads a batch file (core/rows/parse.ts for text, the Parquet plan and row-group decoder for
// Parquet, a column-input model fed by column) and cut into runs of BATCH rows of the model's inputs:
// the data the candidates' agreement is measured on. A row the batch path would refuse fails the job.
import { AppError } from '../../core/errors.ts';
import type { SamplesRef } from '../../core/jobs/compress.ts';
import { isColumnInput, missingValue } from '../../core/rows/columns.ts';
import { rowParser, type ParsedRow } from '../../core/rows/parse.ts';
import { decodeRowGroup, metadataOf, ParquetShapeError, planParquet, readFooter, rowGroupChunks } from '../../core/rows/parquet.ts';
import { splitRows } from '../../core/rows/scanner.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { elementCount, toOrtType, toRaw, TYPED_ARRAYS, type Datatype, type TensorSpec } from '../../core/tensors.ts';
import { fillRow } from '../engine/score-parquet.ts';
import { BATCH, type Feeds } from './measure.ts';

export interface SampleRows {
  rows: number;
  /** Runs of at most BATCH rows (rows whose open dimensions differ start a new run). */
  feeds: Feeds[];
}

const fail = (message: string) => new AppError('bad_request', `samples: ${message}`);

/** Consecutive parsed rows with the same shapes, as feeds of at most BATCH rows each. */
function toFeeds(rows: ParsedRow[], inputs: TensorSpec[]): Feeds[] {
  const feeds: Feeds[] = [];
  const key = (r: ParsedRow) => inputs.map((s) => (r.shapes[s.name] ?? []).join(',')).join(';');
  for (let start = 0; start < rows.length;) {
    let end = start + 1;
    while (end < rows.length && end - start < BATCH && key(rows[end]!) === key(rows[start]!)) end++;
    const run = rows.slice(start, end);
    feeds.push(
      Object.fromEntries(
        inputs.map((s) => [
          s.name,
          toRaw({ name: s.name, datatype: s.datatype, shape: [run.length, ...run[0]!.shapes[s.name]!], data: run.flatMap((r) => r.values[s.name]!) }),
        ]),
      ),
    );
    start = end;
  }
  return feeds;
}

function textRows(text: Buffer, format: 'jsonl' | 'csv', inputs: TensorSpec[], maxRows: number): ParsedRow[] {
  const lines = splitRows(text, format);
  const header = format === 'csv' ? lines.shift() : undefined;
  if (lines.length > maxRows) throw fail(`${lines.length} rows; at most ${maxRows} (MODELQ_COMPRESS_SAMPLES_MAX_ROWS)`);
  const parse = rowParser(format, inputs, header);
  return lines.map((line, i) => {
    const r = parse(line);
    if ('error' in r) throw fail(`row ${i + 1}: ${r.error.message}`);
    return r;
  });
}

/** Parquet: every row group through the batch path's plan and decoder, a run of BATCH rows at a time. */
async function parquetFeeds(bytes: Buffer, inputs: TensorSpec[], maxRows: number): Promise<SampleRows> {
  const u = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const footer = await readFooter(async (s, e) => u.subarray(s, e), u.length);
  const meta = metadataOf(footer);
  const rows = Number(meta.num_rows);
  if (rows > maxRows) throw fail(`${rows} rows; at most ${maxRows} (MODELQ_COMPRESS_SAMPLES_MAX_ROWS)`);
  const plan = planParquet(meta, inputs);
  const pers = inputs.map((s) => elementCount(s.shape.slice(1)));
  const missing = plan.mode === 'lists' && isColumnInput(inputs) ? inputs.map(missingValue) : [];
  const job = { inputs, plan };
  const feeds: Feeds[] = [];
  for (const g of rowGroupChunks(meta)) {
    const cols = await decodeRowGroup({ footer, bytes: u, start: 0, fileBytes: u.length }, plan.columns, g.firstRow, g.rows);
    for (let at = 0; at < g.rows; at += BATCH) {
      const n = Math.min(BATCH, g.rows - at);
      const arrays = inputs.map((s, j) => {
        if (s.datatype === 'BYTES') return new Array<string>(n * pers[j]!).fill('');
        const T = TYPED_ARRAYS[s.datatype as Datatype];
        if (!T) throw fail(`the model's input "${s.name}" is ${s.datatype}, which rows cannot feed`);
        return new T(n * pers[j]!);
      });
      for (let r = 0; r < n; r++) {
        const problem = fillRow(job, cols, at + r, arrays, r, pers, missing);
        if (problem) throw fail(`row ${g.firstRow + at + r + 1}: ${problem}`);
      }
      feeds.push(Object.fromEntries(inputs.map((s, j) => [s.name, { type: toOrtType(s.datatype), dims: [n, ...s.shape.slice(1)], data: arrays[j]! }])));
    }
  }
  return { rows, feeds };
}

/** The uploaded rows as the parent's inputs; a job failure naming the row when one cannot be used. */
export async function loadSamples(store: ArtifactStore, ref: SamplesRef, inputs: TensorSpec[], maxRows: number): Promise<SampleRows> {
  const bytes = await store.get(ref.key);
  if (ref.format === 'parquet') {
    const s = await parquetFeeds(bytes, inputs, maxRows).catch((e: unknown) => {
      throw e instanceof ParquetShapeError ? fail(e.message) : e;
    });
    if (!s.rows) throw fail('the file has no rows');
    return s;
  }
  const rows = textRows(bytes, ref.format, inputs, maxRows);
  if (!rows.length) throw fail('the file has no rows');
  return { rows: rows.length, feeds: toFeeds(rows, inputs) };
}

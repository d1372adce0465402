// A chunk of a Parquet batch of files (producer/batches/parquet-files.ts): one row group, whose
// binary columns hold one file per row. Its values are read here (hyparquet, with binary values kept
// as bytes, not decoded as UTF-8) and each row becomes the JSONL row a ZIP entry would be,
// {"id", "<input>": {"b64"}}, which the file and pipeline scorers decode as any other (score-files.ts,
// score-pipeline.ts). The row group's pages are checked against their bytes and the configured
// bounds first (core/rows/parquet-check.ts); a value over the row limit, null, or text where a file
// is wanted is its row's error, named by the row's id.
import { parquetRead } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { AppError } from '../../core/errors.ts';
import type { BatchSpec, ScoreJob } from '../../core/jobs/batch.ts';
import { ROW_ERROR_KEY } from '../../core/processing/request.ts';
import { fileInputs } from '../../core/processing/pipeline.ts';
import { checkRowGroupPages } from '../../core/rows/parquet-check.ts';
import { parquetLimits } from '../../core/rows/parquet-limits.ts';
import { groupAt, metadataOf, ParquetShapeError, rowGroupFile, type RowGroupBytes } from '../../core/rows/parquet.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import { inputOf, readRowGroup } from '../inference/chunk-input.ts';

/** The most bytes one file of a batch may have: what fits a row of MODELQ_MAX_ROW_BYTES in base64. */
export const maxFileOf = (deps: { cfg?: { MODELQ_MAX_ROW_BYTES?: number } }): number =>
  Math.floor((((deps.cfg?.MODELQ_MAX_ROW_BYTES ?? 16 << 20) - 1024) * 3) / 4);

/** Columns of one row group: name -> a value per row (bytes for a binary column, a string for a text one, a number, or null). */
async function readGroup(g: RowGroupBytes, columns: string[], firstRow: number, rows: number): Promise<Map<string, unknown[]>> {
  const metadata = metadataOf(g.footer);
  checkRowGroupPages(metadata, groupAt(metadata, firstRow, rows), columns, g.bytes, g.start, compressors, parquetLimits());
  const file = rowGroupFile(g);
  const out = new Map<string, unknown[]>(columns.map((c) => [c, new Array<unknown>(rows).fill(null)]));
  try {
    await parquetRead({
      file,
      metadata,
      rowStart: firstRow,
      rowEnd: firstRow + rows,
      columns,
      compressors,
      // Binary values stay bytes (a STRING column is still text).
      utf8: false,
      onChunk: (c) => {
        const all = out.get(c.columnName);
        const data = c.columnData as ArrayLike<unknown>;
        const at = c.rowStart - firstRow;
        if (all) for (let i = Math.max(0, -at); i < data.length && at + i < rows; i++) all[at + i] = data[i];
      },
    });
  } catch (e) {
    throw new ParquetShapeError(`the row group from row ${firstRow} cannot be read: ${(e as Error).message}`);
  }
  return out;
}

/** A row's id as JSON: a number or string as it is, a large integer as a number when exact (else its text), bytes as UTF-8 text. */
function idJson(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? String(v) : JSON.stringify(String(v));
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : undefined;
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8'));
  return JSON.stringify(typeof v === 'string' ? v : String(v));
}

/**
 * The chunk's rows as file-batch JSONL rows. `maxFile`: the most bytes one file may have (each
 * value's length, as read). A text step's column gives its text (bytes read as UTF-8).
 */
export async function parquetFileRows(
  spec: BatchSpec,
  chunk: ScoreJob,
  deps: { store: ArtifactStore; objects?: ObjectStores },
  maxFile: number,
): Promise<string[]> {
  const plan = spec.source ? spec.source.files[chunk.file!]?.parquet : spec.parquet;
  const inputs = fileInputs(spec.model);
  if (!plan || !inputs || plan.columns.length !== inputs.length)
    throw new AppError('internal', `batch ${spec.id} is Parquet without a plan of its ${inputs?.length ?? 0} file columns`);
  const texts = new Set(spec.model.processing?.inputs.filter((s) => s.type === 'text').map((s) => s.input) ?? []);
  const input = inputOf(spec, chunk, deps);
  const columns = [...plan.columns, ...(plan.id ? [plan.id] : [])];
  const values = await readGroup(await readRowGroup(input, chunk), columns, chunk.firstRow, chunk.rows);
  const ids = plan.id ? values.get(plan.id)! : [];
  const lines: string[] = [];
  for (let r = 0; r < chunk.rows; r++) {
    const id = idJson(ids[r]);
    const head = id === undefined ? '{' : `{"id":${id},`;
    let fields = '';
    let error: string | undefined;
    for (const [k, name] of inputs.entries()) {
      const col = plan.columns[k]!;
      const v = values.get(col)![r];
      const at = `column "${col}"`;
      if (v === null || v === undefined) error = `${at} has no value in this row`;
      else if (texts.has(name)) {
        const text = v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8') : String(v);
        fields += `${JSON.stringify(name)}:${JSON.stringify(text)},`;
        continue;
      } else if (!(v instanceof Uint8Array))
        error = `${at} holds ${typeof v === 'string' ? 'text (a STRING column)' : typeof v}, not the file's bytes: write files in a binary column`;
      else if (v.byteLength > maxFile) error = `the file in ${at} is ${v.byteLength} bytes, over ${maxFile} (MODELQ_MAX_ROW_BYTES)`;
      else {
        fields += `${JSON.stringify(name)}:{"b64":"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"},`;
        continue;
      }
      break;
    }
    lines.push(error !== undefined ? `${head}${JSON.stringify(ROW_ERROR_KEY)}:${JSON.stringify(error)}}` : `${head}${fields.slice(0, -1)}}`);
  }
  return lines;
}

// A batch chunk of a pipeline: JSONL rows of {"id", "<input>": {"b64"} | [values]} (a ZIP of files
// arrives converted to these, its file names as ids). Rows run through the pipeline in groups; when a
// group fails for one of its rows (a file that does not decode), its rows run one by one, so that
// row is one error line naming it and the others are scored. Output and error lines are those of
// every batch (core/rows/output-lines.ts), in input order.
import type { Job } from 'bullmq';
import type { BatchSpec, PartInfo, ScoreJob } from '../../core/jobs/batch.ts';
import { AppError, errorData } from '../../core/errors.ts';
import { isFileSpec, pipelineTextInputs, type Pipeline } from '../../core/processing/pipeline.ts';
import { fileB64 } from '../../core/processing/request.ts';
import { errorLine, outputLines, type RowRef } from '../../core/rows/output-lines.ts';
import { elementCount, toRaw, type RawTensor } from '../../core/tensors.ts';
import { inputOf, readRange } from '../inference/chunk-input.ts';
import type { ChunkBudget } from '../inference/chunk-budget.ts';
import { PartSink } from '../inference/part-sink.ts';
import { concatRows, PipelineRunner, type PipelineValue } from './pipeline.ts';
import { fileRowObject, type FileChunkDeps } from './score-files.ts';
import { maxFileOf, parquetFileRows } from './parquet-files.ts';

/** Rows run through the pipeline together. */
const GROUP = 16;

type Row = { ref: RowRef; given: Record<string, PipelineValue> } | { ref: RowRef; error: string };

function parseRow(line: string, ref: RowRef, p: Pipeline): Row {
  const o = fileRowObject(line, ref);
  if ('error' in o) return { ref, error: o.error };
  const r = o.row;
  const given: Record<string, PipelineValue> = {};
  const texts = pipelineTextInputs(p);
  for (const inp of p.inputs) {
    // A text (it feeds a step's text processing): the row's string, as it is.
    if (texts.has(inp.name)) {
      const t = r[inp.name];
      if (typeof t !== 'string') return { ref, error: `"${inp.name}" must be a text (a string)` };
      given[inp.name] = [t];
      continue;
    }
    if (isFileSpec(inp)) {
      const f = fileB64(r[inp.name]);
      if (typeof f !== 'string') return { ref, error: `"${inp.name}" ${f.error}` };
      given[inp.name] = [Buffer.from(f, 'base64')];
      continue;
    }
    const v = r[inp.name];
    const flat = Array.isArray(v) ? (v as unknown[]).flat(8) : null;
    const shape = [1, ...inp.shape.slice(1)];
    if (!flat || flat.length !== elementCount(shape) || !flat.every((x) => typeof x === 'number' || typeof x === 'boolean'))
      return { ref, error: `"${inp.name}" must be ${elementCount(shape)} numbers (${inp.datatype} [${inp.shape.slice(1).join(',')}])` };
    try {
      given[inp.name] = toRaw({ name: inp.name, datatype: inp.datatype, shape, data: flat as number[] });
    } catch (e) {
      return { ref, error: `"${inp.name}": ${(e as Error).message}` };
    }
  }
  return { ref, given };
}

async function jsonlRows(spec: BatchSpec, chunk: ScoreJob, deps: FileChunkDeps): Promise<string[]> {
  const input = inputOf(spec, chunk, deps);
  const text = Buffer.from(await readRange(input.store, input.key, input.start, input.end)).toString('utf8');
  return text.split('\n').filter((l) => l.trim() !== '');
}

/** Rows' inputs joined into one request. */
function joinRows(rows: Record<string, PipelineValue>[]): Record<string, PipelineValue> {
  const out: Record<string, PipelineValue> = {};
  for (const k of Object.keys(rows[0]!)) {
    const parts = rows.map((r) => r[k]!);
    out[k] = Array.isArray(parts[0]) ? ((parts as (Buffer | string)[][]).flat() as Buffer[] | string[]) : concatRows(parts as RawTensor[]);
  }
  return out;
}

export async function scorePipelineChunk(
  chunk: ScoreJob,
  spec: BatchSpec,
  deps: FileChunkDeps,
  job: Pick<Job, 'updateProgress'>,
  budget: ChunkBudget,
): Promise<{ completed: number; failed: number; part?: PartInfo }> {
  const p = spec.model.pipeline!;
  const runner = await PipelineRunner.open(p, {
    engine: deps.engine,
    store: deps.store,
    cacheDir: deps.cacheDir,
    maxPixels: deps.cfg?.MODELQ_MAX_IMAGE_PIXELS,
    maxCrops: deps.cfg?.MODELQ_PIPELINE_MAX_CROPS,
  });
  if (!runner.isWarm()) await runner.warm();
  const lines = spec.format === 'parquet' ? await parquetFileRows(spec, chunk, deps, maxFileOf(deps)) : await jsonlRows(spec, chunk, deps);
  const sink = new PartSink(spec, chunk, deps.store, deps.objects);
  let completed = 0;
  let failed = 0;
  const run = (rows: Extract<Row, { given: unknown }>[]) => runner.run(joinRows(rows.map((r) => r.given)), budget.task().signal);
  try {
    for (let g = 0; g < lines.length; g += GROUP) {
      budget.check();
      const rows = lines.slice(g, g + GROUP).map((l, i) => parseRow(l, { n: chunk.firstRow + g + i, id: '' }, p));
      const good = rows.filter((d): d is Extract<Row, { given: unknown }> => 'given' in d);
      const errors = new Map<RowRef, string>();
      for (const d of rows) if ('error' in d) errors.set(d.ref, d.error);
      let out = '';
      if (good.length) {
        let result: Record<string, RawTensor> | undefined;
        try {
          result = await run(good);
        } catch (e) {
          if (!(e instanceof AppError) || e.retryable) throw e;
        }
        if (result)
          out += outputLines(
            good.map((d) => d.ref),
            0,
            good.length,
            result,
          );
        else
          for (const d of good) {
            try {
              out += outputLines([d.ref], 0, 1, await run([d]));
            } catch (e) {
              if (!(e instanceof AppError) || e.retryable) throw e;
              const name = d.ref.id ? ` ${d.ref.id}` : '';
              errors.set(d.ref, `row${name}: ${e.message}`);
            }
          }
      }
      let err = '';
      for (const d of rows) if (errors.has(d.ref)) err += errorLine(d.ref.n, d.ref.id, errorData(new AppError('bad_request', errors.get(d.ref)!)));
      await sink.pushOut(Buffer.from(out));
      await sink.pushErr(Buffer.from(err));
      completed += rows.length - errors.size;
      failed += errors.size;
      await Promise.all([
        job.updateProgress({ rowsDone: g + rows.length, rows: chunk.rows }),
        deps.batches.chunkProgress(chunk.batchId, chunk.index, g + rows.length),
      ]);
    }
    const part = await sink.end();
    return { completed, failed, ...(part ? { part } : {}) };
  } catch (e) {
    sink.fail(e as Error);
    await sink.settled();
    throw e;
  }
}

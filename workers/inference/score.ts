// Processor for `score` jobs: one chunk of a batch file. Reads its byte range, parses rows, runs
// the model in large batches through the engine (parsing the next batch while one runs), and
// writes the chunk's output part and error part whole under deterministic keys, so a chunk that
// runs twice leaves one copy.
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Job } from 'bullmq';
import type { BatchStore } from '../../core/batches.ts';
import { AppError } from '../../core/errors.ts';
import { batchKeys, scoreJobSchema, type BatchSpec, type ScoreResult } from '../../core/jobs/batch.ts';
import { rowParser, type ParsedRow } from '../../core/rows/parse.ts';
import { splitRows } from '../../core/rows/scanner.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { elementCount, toOrtType, type Datatype, type RawTensor, type TypedArray } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { parseJobData, toJobError } from '../processor.ts';

export interface ScoreDeps { engine: Engine; store: ArtifactStore; batches: BatchStore; cacheDir?: string }

/** Rows per onnxruntime run. Large enough to amortize a run, small enough to interleave with other work. */
export const SCORE_RUN_ROWS = 512;
/** How often a chunk reports its progress (two Redis writes). */
const PROGRESS_EVERY_MS = 250;

const TYPED: Partial<Record<Datatype, new (n: number) => TypedArray>> = {
  FP32: Float32Array, FP64: Float64Array, INT8: Int8Array, UINT8: Uint8Array, INT16: Int16Array, UINT16: Uint16Array,
  INT32: Int32Array, UINT32: Uint32Array, INT64: BigInt64Array, UINT64: BigUint64Array, BOOL: Uint8Array,
};

export async function scoreProcessor(job: Pick<Job, 'data' | 'updateProgress'> & Partial<Pick<Job, 'attemptsMade' | 'opts'>>, deps: ScoreDeps, signal?: AbortSignal): Promise<ScoreResult> {
  const data = parseJobData(scoreJobSchema, job.data, 'score');
  const spec = await deps.batches.spec(data.batchId);
  if (!spec) throw toJobError(new AppError('not_found', `batch ${data.batchId} no longer exists`));
  const status = await deps.batches.status(data.batchId);
  // Cancelled (or already failed): no new chunk starts.
  if (status === 'cancelling' || status === 'cancelled' || status === 'failed') return { completed: 0, failed: 0, skipped: true };
  await deps.batches.transition(data.batchId, 'running', ['queued']);
  try {
    const outcome = await scoreChunk(data, spec, deps, job, signal);
    await deps.batches.recordChunk(data.batchId, data.index, outcome);
    return outcome;
  } catch (e) {
    const err = toJobError(e);
    const lastAttempt = err.name === 'UnrecoverableError' || (job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1);
    if (lastAttempt) await deps.batches.fail(data.batchId, `chunk ${data.index} failed: ${err.message}`);
    throw err;
  }
}

async function scoreChunk(chunk: { batchId: string; index: number; start: number; end: number; firstRow: number; rows: number },
  spec: BatchSpec, deps: ScoreDeps, job: Pick<Job, 'updateProgress'>, signal?: AbortSignal): Promise<{ completed: number; failed: number }> {
  const path = await localModelPath(deps.store, spec.model.sha256, deps.cacheDir);
  const model: ModelHandle = { sha256: spec.model.sha256, path, label: `${spec.model.name}@${spec.model.version}` };
  const stream = await deps.store.read(spec.inputKey, { start: chunk.start, end: chunk.end });
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  const lines = splitRows(Buffer.concat(parts), spec.format);
  if (lines.length !== chunk.rows) throw new AppError('internal', `chunk ${chunk.index} has ${lines.length} rows, the upload counted ${chunk.rows}`);
  const parse = rowParser(spec.format, spec.model.inputs, spec.header);
  const out: string[] = [];
  const errors: string[] = [];
  let completed = 0;
  let failed = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let lastReport = performance.now();

  for (let at = 0; at < lines.length; at += SCORE_RUN_ROWS) {
    if (signal?.aborted) throw new AppError('unavailable', 'chunk cancelled by the worker', true);
    const rows: { n: number; row: ParsedRow }[] = [];
    const end = Math.min(lines.length, at + SCORE_RUN_ROWS);
    for (let i = at; i < end; i++) {
      const n = chunk.firstRow + i;
      const r = parse(lines[i]!);
      if ('error' in r) {
        errors.push(JSON.stringify({ row: n, ...(r.id !== undefined ? { id: r.id } : {}), error: r.error }));
        failed++;
      } else rows.push({ n, row: r });
    }
    // Runs go one after another so output order is input order; parsing overlaps the previous run.
    const prev = inFlight;
    const groups = groupByShape(rows);
    const runs = groups.map((g) => deps.engine.run(model, feedsOf(g, spec), { rows: g.length, requests: g.length }));
    inFlight = (async () => {
      await prev;
      for (let gi = 0; gi < groups.length; gi++) {
        const g = groups[gi]!;
        let result: Record<string, RawTensor>;
        try {
          result = await runs[gi]!;
        } catch (e) {
          // Only bad data is the rows' fault; a model that does not load fails the chunk.
          if (!(e instanceof AppError) || e.code !== 'bad_request') throw e;
          // The whole run failed on bad data: score row by row so only the bad rows fail.
          for (const r of g) {
            try {
              const one = await deps.engine.run(model, feedsOf([r], spec), { rows: 1 });
              out.push(outputLine(r, one, 0));
              completed++;
            } catch (e1) {
              if (!(e1 instanceof AppError) || e1.code !== 'bad_request') throw e1;
              errors.push(JSON.stringify({ row: r.n, ...(r.row.id !== undefined ? { id: r.row.id } : {}), error: { code: e1.code, message: e1.message } }));
              failed++;
            }
          }
          continue;
        }
        for (let i = 0; i < g.length; i++) out.push(outputLine(g[i]!, result, i));
        completed += g.length;
      }
    })();
    inFlight.catch(() => {}); // surfaced by the next await
    if (performance.now() - lastReport > PROGRESS_EVERY_MS) {
      lastReport = performance.now();
      await Promise.all([job.updateProgress({ rowsDone: end, rows: chunk.rows }), deps.batches.chunkProgress(chunk.batchId, chunk.index, end)]);
    }
    await yieldToLoop(); // parsing is synchronous: let BullMQ renew locks and other jobs move
  }
  await inFlight;
  // Out-of-order completions within a chunk cannot happen (runs are awaited in order), but rows of
  // different shapes run in separate groups: restore input order.
  out.sort(byRow);
  errors.sort(byRow);
  await deps.store.put(batchKeys.output(chunk.batchId, chunk.index), out.length ? `${out.join('\n')}\n` : '');
  await deps.store.put(batchKeys.errors(chunk.batchId, chunk.index), errors.length ? `${errors.join('\n')}\n` : '');
  return { completed, failed };
}

const rowOf = (line: string) => Number(line.slice(7, line.indexOf(',')));
const byRow = (a: string, b: string) => rowOf(a) - rowOf(b);

type Row = { n: number; row: ParsedRow };

/** Rows whose shapes beyond the batch dimension are equal can share a run. */
function groupByShape(rows: Row[]): Row[][] {
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = JSON.stringify(r.row.shapes);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(r);
  }
  return [...groups.values()];
}

function feedsOf(rows: Row[], spec: BatchSpec): Record<string, RawTensor> {
  const feeds: Record<string, RawTensor> = {};
  for (const input of spec.model.inputs) {
    const shape = rows[0]!.row.shapes[input.name]!;
    const per = elementCount(shape);
    const dims = [rows.length, ...shape];
    if (input.datatype === 'BYTES') {
      feeds[input.name] = { type: 'string', dims, data: rows.flatMap((r) => r.row.values[input.name]!.map(String)) };
      continue;
    }
    const Ctor = TYPED[input.datatype];
    if (!Ctor) throw new AppError('bad_request', `input "${input.name}": datatype ${input.datatype} is not supported in batches`);
    const arr = new Ctor(rows.length * per);
    const big = arr instanceof BigInt64Array || arr instanceof BigUint64Array;
    rows.forEach((r, i) => {
      const v = r.row.values[input.name]!;
      if (big) (arr as BigInt64Array).set(v.map((x) => BigInt(x as number)), i * per);
      else if (input.datatype === 'BOOL') (arr as Uint8Array).set(v.map((x) => (x ? 1 : 0)), i * per);
      else (arr as Float32Array).set(v as number[], i * per);
    });
    feeds[input.name] = { type: toOrtType(input.datatype), dims, data: arr };
  }
  return feeds;
}

function outputLine(r: Row, result: Record<string, RawTensor>, i: number): string {
  const outputs: Record<string, unknown[]> = {};
  for (const [name, t] of Object.entries(result)) {
    const per = elementCount(t.dims.slice(1));
    const slice = (t.data as TypedArray | string[]).slice(i * per, (i + 1) * per);
    outputs[name] = slice instanceof BigInt64Array || slice instanceof BigUint64Array ? Array.from(slice, Number) : Array.from(slice as ArrayLike<number>);
  }
  return JSON.stringify({ row: r.n, ...(r.row.id !== undefined ? { id: r.row.id } : {}), outputs });
}

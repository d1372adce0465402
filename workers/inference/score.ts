// Processor for `score` jobs: one chunk of a batch file. Streams its byte range, cuts it into
// segments of whole rows, has the engine threads parse, score and format them in parallel, and
// streams the chunk's output and error parts, in input order, under deterministic keys (each
// replaced whole when done), so a chunk that runs twice leaves one copy. Memory is bounded by a
// few segments, whatever the chunk's size; a row past MODELQ_MAX_ROW_BYTES is an error row.
import type { Job } from 'bullmq';
import type { BatchStore } from '../../core/batches.ts';
import type { DriftProfile } from '../../core/drift/index.ts';
import type { Config } from '../../core/config.ts';
import { AppError, fromFailedReason } from '../../core/errors.ts';
import {
  chunkSpec,
  scoreJobSchema,
  shadowSpecOf,
  versionedOutput,
  type BatchSpec,
  type PartInfo,
  type ScoreJob,
  type ScoreResult,
} from '../../core/jobs/batch.ts';
import { lineRange } from '../../core/rows/line-range.ts';
import { errorLine } from '../../core/rows/output-lines.ts';
import { ownedLines } from '../rows/line-buffers.ts';
import { SEGMENT_BYTES, Segmenter, type Segment } from '../rows/segmenter.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { inputOf, readable, readRowGroup } from './chunk-input.ts';
import { encodeSpec, PartSink } from './part-sink.ts';
import type { EncodedPiece, EncodeSpec } from '../../core/rows/output-encode.ts';
import type { BatchDrift, ChunkDrift } from './batch-drift.ts';
import type { ExplainRows } from '../engine/explain-rows.ts';
import type { SampledRows } from '../engine/drift-rows.ts';
import { loadBackground, loadColumnBackground } from '../explain/background.ts';
import { parseJobData, toJobError } from '../processor.ts';
import { scoreFileChunk } from '../processing/score-files.ts';
import { scorePipelineChunk } from '../processing/score-pipeline.ts';
import { budgetFailure, ChunkBudget, ChunkStopped, DEFAULT_CHUNK_TIMEOUT_MS, DEFAULT_POISON_ATTEMPTS, lostStarts, lostTooOften } from './chunk-budget.ts';

export interface ScoreDeps {
  engine: Engine;
  store: ArtifactStore;
  batches: BatchStore;
  cacheDir?: string;
  cfg?: Pick<Config, 'MODELQ_MAX_ROW_BYTES'> &
    Partial<
      Pick<
        Config,
        | 'MODELQ_EXPLAIN_RUN_ROWS'
        | 'MODELQ_EXPLAIN_MAX_BYTES'
        | 'MODELQ_CHUNK_TIMEOUT_MS'
        | 'MODELQ_POISON_ATTEMPTS'
        | 'MODELQ_MAX_IMAGE_PIXELS'
        | 'MODELQ_PIPELINE_MAX_CROPS'
        | 'MODELQ_BATCH_ROOTS'
      >
    >;
  /** Drift sampling of the rows (none without it). */
  drift?: BatchDrift;
  /** The stores of batches by reference (their inputs and output prefixes). */
  objects?: ObjectStores;
}

type Outcome = { completed: number; failed: number; part?: PartInfo };

/** How often a chunk reports its progress (two Redis writes). */
const PROGRESS_EVERY_MS = 250;
const DEFAULT_MAX_ROW_BYTES = 16 * 1024 * 1024;
const EMPTY = new Uint8Array(0);

/** What a segment adds to the chunk's parts. */
interface Piece {
  out: Uint8Array;
  err: Uint8Array;
  rows: number;
  completed: number;
  failed: number;
  sample?: SampledRows;
  formatted?: EncodedPiece;
  driftCounts?: { rows: number; counts: [string, number][] };
}

/** What every segment of a chunk carries besides its bytes: the explanation's settings and the drift share. */
interface ChunkExtras {
  explain?: ExplainRows;
  driftProfile?: DriftProfile;
  /** By reference in CSV or Parquet: the threads encode the output (part-sink.ts). */
  encode?: EncodeSpec;
  /** Output lines name the version (versionedOutput). */
  modelVersion?: number;
}

const DEFAULT_EXPLAIN_RUN_ROWS = 1024;

/** The background rows and settings an explained batch's segments take to their threads. */
async function extrasOf(spec: BatchSpec, deps: ScoreDeps, drift: ChunkDrift | undefined): Promise<ChunkExtras> {
  const out: ChunkExtras = {};
  if (spec.explain) {
    const { background, ...e } = spec.explain;
    const bg = e.columns ? new Float32Array(0) : background ? (await loadBackground(deps.store, background.key)).x : new Float32Array(0);
    const columnBackground = e.columns ? await loadColumnBackground(deps.store, background?.key, e.columns) : undefined;
    out.explain = {
      ...e,
      background: bg,
      ...(columnBackground ? { columnBackground } : {}),
      runRows: deps.cfg?.MODELQ_EXPLAIN_RUN_ROWS ?? DEFAULT_EXPLAIN_RUN_ROWS,
      ...(deps.cfg?.MODELQ_EXPLAIN_MAX_BYTES !== undefined ? { maxBytes: deps.cfg.MODELQ_EXPLAIN_MAX_BYTES } : {}),
    };
  }
  if (drift?.share && drift.profile && drift.addCounts) out.driftProfile = drift.profile;
  const encode = encodeSpec(spec);
  if (encode) out.encode = encode;
  if (versionedOutput(spec)) out.modelVersion = spec.model.version;
  return out;
}

/** What the next segment draws for drift (read per segment: a reference's rows may be complete meanwhile). */
function driftNow(drift: ChunkDrift | undefined): { driftSample?: number; driftMaxRows?: number } {
  const share = drift?.share ?? 0;
  if (!share) return {};
  const max = drift!.maxRows;
  return { driftSample: share, ...(max !== undefined ? { driftMaxRows: max } : {}) };
}

/** A segment's drift share: counted by its thread, or its drawn rows. */
function addDrift(drift: ChunkDrift | undefined, r: Pick<Piece, 'sample' | 'driftCounts'>): void {
  if (r.driftCounts) drift?.addCounts?.(r.driftCounts.rows, r.driftCounts.counts);
  else if (r.sample) drift?.add(r.sample.inputs.map((t) => ({ name: t.name, shape: t.dims, data: t.data })));
}

export async function scoreProcessor(
  job: Pick<Job, 'data' | 'updateProgress'> & Partial<Pick<Job, 'attemptsMade' | 'attemptsStarted' | 'opts'>>,
  deps: ScoreDeps,
  signal?: AbortSignal,
): Promise<ScoreResult> {
  const data = parseJobData(scoreJobSchema, job.data, 'score');
  const spec = await deps.batches.spec(data.batchId);
  if (!spec) throw toJobError(new AppError('not_found', `batch ${data.batchId} no longer exists`));
  const status = await deps.batches.status(data.batchId);
  // Cancelled (or already failed): no new chunk starts.
  if (status === 'cancelling' || status === 'cancelled' || status === 'failed') return { completed: 0, failed: 0, skipped: true };
  const poison = deps.cfg?.MODELQ_POISON_ATTEMPTS ?? DEFAULT_POISON_ATTEMPTS;
  const failBatch = (err: Error) => deps.batches.fail(data.batchId, `chunk ${data.index} failed: ${fromFailedReason(err.message).message}`);
  // A chunk that took its worker down every time would otherwise be taken up again and again. One
  // loss more than the budget failures are allowed: workers are also lost for reasons of their own.
  const lost = lostStarts(job);
  if (lost > poison) {
    const err = lostTooOften(data.index, lost, poison);
    await failBatch(err);
    throw err;
  }
  await deps.batches.transition(data.batchId, 'running', ['queued']);
  const budget = new ChunkBudget(data, deps.cfg?.MODELQ_CHUNK_TIMEOUT_MS ?? DEFAULT_CHUNK_TIMEOUT_MS, deps.batches, signal);
  try {
    // Over a weighted alias, the chunk's version (picked by its route key, the same on a rerun).
    const cs = chunkSpec(spec, data.index);
    const started = performance.now();
    // A model with declared processing reads files (workers/processing/score-files.ts); a pipeline runs its
    // steps on each group of rows (workers/processing/score-pipeline.ts).
    const scored = cs.model.pipeline
      ? await scorePipelineChunk(data, cs, deps, job, budget)
      : cs.model.processing
        ? await scoreFileChunk(data, cs, deps, job, budget)
        : await scoreChunk(data, cs, deps, job, budget);
    const outcome: ScoreResult = { ...scored, ms: Math.round(performance.now() - started) };
    if (spec.route?.length) outcome.version = cs.model.version;
    if (spec.shadow) outcome.shadow = await shadowPass(data, cs, deps, budget);
    await deps.batches.recordChunk(data.batchId, data.index, outcome);
    return outcome;
  } catch (e) {
    // Cancelled or failed by another chunk meanwhile: this one ends without an outcome, as a skipped one does.
    if (budget.reason instanceof ChunkStopped) return { completed: 0, failed: 0, skipped: true };
    const err = budgetFailure(e, job, poison) ?? toJobError(e);
    const lastAttempt = err.name === 'UnrecoverableError' || (job.attemptsMade ?? 0) + 1 >= (job.opts?.attempts ?? 1);
    if (lastAttempt) await failBatch(err);
    throw err;
  } finally {
    budget.dispose();
  }
}

/**
 * A shadow batch's candidate pass over the chunk: the same rows, the candidate's model, JSONL parts
 * of its own (shadowSpecOf); no drift, no progress (the primary's pass reported it).
 */
async function shadowPass(chunk: ScoreJob, spec: BatchSpec, deps: ScoreDeps, budget: ChunkBudget): Promise<NonNullable<ScoreResult['shadow']>> {
  const started = performance.now();
  const quiet = Object.assign(Object.create(deps.batches) as BatchStore, { chunkProgress: () => Promise.resolve() });
  const { drift: _drift, ...rest } = deps;
  const r = await scoreChunk(chunk, shadowSpecOf(spec), { ...rest, batches: quiet }, { updateProgress: () => Promise.resolve() }, budget);
  return { completed: r.completed, failed: r.failed, ms: Math.round(performance.now() - started) };
}

async function scoreChunk(chunk: ScoreJob, spec: BatchSpec, deps: ScoreDeps, job: Pick<Job, 'updateProgress'>, budget: ChunkBudget): Promise<Outcome> {
  const path = await localModelPath(deps.store, spec.model.sha256, deps.cacheDir);
  const model: ModelHandle = { sha256: spec.model.sha256, path, label: `${spec.model.name}@${spec.model.version}` };
  const drift = await deps.drift?.forChunk(spec.model.name, spec.model.version, spec.tenant ?? 'default');
  const extras = await extrasOf(spec, deps, drift);
  budget.check();
  const r = await scoreChunkRows(chunk, spec, deps, model, extras, job, drift, budget);
  await drift?.flush();
  return r;
}

async function scoreChunkRows(
  chunk: ScoreJob,
  spec: BatchSpec,
  deps: ScoreDeps,
  model: ModelHandle,
  extras: ChunkExtras,
  job: Pick<Job, 'updateProgress'>,
  drift: ChunkDrift | undefined,
  budget: ChunkBudget,
): Promise<Outcome> {
  if (spec.format === 'parquet') return scoreRowGroup(chunk, spec, deps, model, extras, drift, budget);
  const format = spec.format;
  const maxRowBytes = deps.cfg?.MODELQ_MAX_ROW_BYTES ?? DEFAULT_MAX_ROW_BYTES;
  const segmenter = new Segmenter(format, { maxRowBytes });
  const input = inputOf(spec, chunk, deps);
  // Both parts stream to the store as they are made; a failure fails both and no part is written.
  const sink = new PartSink(spec, chunk, deps.store, deps.objects);
  // Segments scored on the engine threads, in input order: one more than the threads keeps them busy,
  // at most 4 per chunk (MODELQ_SCORE_CONCURRENCY chunks share the threads) bounds the memory.
  const window: Promise<Piece>[] = [];
  const depth = Math.min(4, (deps.engine.threadCount ?? 1) + 1);
  let completed = 0;
  let failed = 0;
  let rowsDone = 0;
  let lastReport = performance.now();

  const submit = (s: Segment) => {
    const p: Promise<Piece> =
      s.kind === 'long'
        ? Promise.resolve({
            out: EMPTY,
            err: Buffer.from(
              errorLine(chunk.firstRow + s.row, '', {
                code: 'row_too_long',
                message: `the row is longer than ${maxRowBytes} bytes (MODELQ_MAX_ROW_BYTES); it was not read`,
              }),
            ),
            rows: 1,
            completed: 0,
            failed: 1,
          })
        : deps.engine.score(
            model,
            {
              format,
              inputs: spec.model.inputs,
              ...(input.header !== undefined ? { header: input.header } : {}),
              ...(spec.delimiter !== undefined ? { delimiter: spec.delimiter } : {}),
              firstRow: chunk.firstRow + s.firstRow,
              bytes: s.bytes,
              ...extras,
              ...driftNow(drift),
            },
            budget.task(),
          );
    p.catch(() => {}); // surfaced when its turn comes
    window.push(p);
  };
  const writeNext = async () => {
    const r = await window.shift()!;
    addDrift(drift, r);
    await sink.pushOut(r.out);
    if (r.rows && r.completed) await sink.pushFormatted(r.formatted);
    await sink.pushErr(r.err);
    completed += r.completed;
    failed += r.failed;
    rowsDone += r.rows;
    if (performance.now() - lastReport > PROGRESS_EVERY_MS) {
      lastReport = performance.now();
      await Promise.all([job.updateProgress({ rowsDone, rows: chunk.rows }), deps.batches.chunkProgress(chunk.batchId, chunk.index, rowsDone)]);
    }
  };
  const take = async (segments: Segment[]) => {
    for (const s of segments) {
      budget.check();
      submit(s);
      while (window.length >= depth) await writeNext();
    }
  };

  // By reference, the range was planned without reading it: its lines are those that begin in it.
  // An upload's chunk in a local file: read in buffers that end at a row's end, each handed on as a segment without a copy.
  const local = spec.source ? undefined : input.store.localPath(input.key);
  const bytes = spec.source
    ? lineRange((from, to) => input.store.read(input.key, { start: from, end: to }), chunk.start, chunk.end, input.bytes, {
        skipHeader: format === 'csv',
        maxRowBytes,
      })
    : local
      ? ownedLines(local, input.start, input.end, SEGMENT_BYTES)
      : await input.store.read(input.key, { start: input.start, end: input.end });
  let part: PartInfo | undefined;
  try {
    for await (const buf of readable(bytes, input.uri)) await take(local ? segmenter.pushOwned(buf as Buffer) : segmenter.push(buf as Buffer));
    await take(segmenter.end());
    while (window.length) await writeNext();
    if (!spec.source && segmenter.rowCount !== chunk.rows)
      throw new AppError('internal', `chunk ${chunk.index} has ${segmenter.rowCount} rows, the upload counted ${chunk.rows}`);
    part = await sink.end();
  } catch (e) {
    sink.fail(e as Error);
    await sink.settled();
    throw e;
  }
  return { completed, failed, ...(part ? { part } : {}) };
}

/** A Parquet chunk is one row group: its bytes and the file's footer go to an engine thread whole. */
async function scoreRowGroup(
  chunk: ScoreJob,
  spec: BatchSpec,
  deps: ScoreDeps,
  model: ModelHandle,
  extras: ChunkExtras,
  drift: ChunkDrift | undefined,
  budget: ChunkBudget,
): Promise<Outcome> {
  const input = inputOf(spec, chunk, deps);
  const plan = spec.source ? spec.source.files[chunk.file!]!.parquet : spec.parquet;
  if (!plan) throw new AppError('internal', `batch ${spec.id} is Parquet without a column plan`);
  const { footer, bytes } = await readRowGroup(input, chunk);
  const r = await deps.engine.scoreRowGroup(
    model,
    {
      inputs: spec.model.inputs,
      plan,
      firstRow: chunk.firstRow,
      // By reference, rows are numbered within their part (the manifest gives each part's first row in its file).
      ...(spec.source ? { numberFrom: 0 } : {}),
      rows: chunk.rows,
      footer,
      bytes,
      start: chunk.start,
      fileBytes: input.bytes,
      ...extras,
      ...driftNow(drift),
    },
    budget.task(),
  );
  addDrift(drift, r);
  if (r.rows !== chunk.rows) throw new AppError('internal', `chunk ${chunk.index} has ${r.rows} rows, the upload counted ${chunk.rows}`);
  const sink = new PartSink(spec, chunk, deps.store, deps.objects);
  let part: PartInfo | undefined;
  try {
    await Promise.all([sink.pushOut(r.out), r.completed ? sink.pushFormatted(r.formatted) : undefined, sink.pushErr(r.err)]);
    part = await sink.end();
  } catch (e) {
    sink.fail(e as Error);
    await sink.settled();
    throw e;
  }
  return { completed: r.completed, failed: r.failed, ...(part ? { part } : {}) };
}

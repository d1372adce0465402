// A batch chunk of a model with declared processing: JSONL rows of {"id", "<input>": {"b64"}} (a ZIP
// upload arrives converted to these, its file names as ids). Each row's files are decoded on their
// own, so a file that does not decode (or is over MODELQ_MAX_IMAGE_PIXELS) is one error row naming it;
// the rows that decode run together on the engine and are post-processed. Output and error lines are
// those of every batch (core/rows/output-lines.ts), in input order, written through the PartSink.
import type { Job } from 'bullmq';
import { versionedOutput, type BatchSpec, type PartInfo, type ScoreJob } from '../../core/jobs/batch.ts';
import { AppError, errorData } from '../../core/errors.ts';
import { fileB64, ROW_ERROR_KEY } from '../../core/processing/request.ts';
import type { Processing } from '../../core/processing/spec.ts';
import { errorLine, idText, outputLines, versionTag, type RowRef } from '../../core/rows/output-lines.ts';
import type { RawTensor } from '../../core/tensors.ts';
import type { Engine, ModelHandle } from '../engine/engine.ts';
import { inputOf, readRange } from '../inference/chunk-input.ts';
import type { ChunkBudget } from '../inference/chunk-budget.ts';
import { PartSink } from '../inference/part-sink.ts';
import type { BatchStore } from '../../core/batches.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import { localModelPath } from '../model-cache.ts';
import { parseObjectUri, underRoots, type ObjectRef } from '../../core/storage/object-uris.ts';
import { FileError } from './image.ts';
import { parquetFileRows } from './parquet-files.ts';
import { stepFeeds, withPost, type StepContext } from './feeds.ts';
import { chunkDrift } from './drift.ts';
import type { BatchDrift } from '../inference/batch-drift.ts';
import { encodeText, stepTokenizer, textTensors, type Encoded } from './text.ts';

/** Rows decoded together and run as one batch. */
const GROUP = 16;

/** What the chunk processor's deps (workers/inference/score.ts ScoreDeps) give this one. */
export interface FileChunkDeps {
  engine: Engine;
  store: ArtifactStore;
  batches: BatchStore;
  cacheDir?: string;
  objects?: ObjectStores;
  cfg?: { MODELQ_MAX_IMAGE_PIXELS?: number; MODELQ_PIPELINE_MAX_CROPS?: number; MODELQ_MAX_ROW_BYTES?: number; MODELQ_BATCH_ROOTS?: Record<string, string[]> };
  /** Drift of the processed inputs and outputs (./drift.ts); none without it. */
  drift?: BatchDrift;
}

/** A row's file feeds [1, ...], and its texts' tokens by step input (padded together with the rest of its run). */
type Decoded = { ref: RowRef; feeds: Record<string, RawTensor>; texts: Record<string, Encoded> } | { ref: RowRef; error: string };

/** Reads a row's {"uri"} file: a URI under the batch tenant's roots (MODELQ_BATCH_ROOTS), within the row limit. */
type UriReader = (uri: string) => Promise<Buffer>;

function uriReader(spec: BatchSpec, deps: FileChunkDeps, maxFile: number): UriReader {
  const roots = deps.cfg?.MODELQ_BATCH_ROOTS?.[spec.tenant ?? 'default'] ?? [];
  return async (uri) => {
    let ref: ObjectRef;
    try {
      ref = parseObjectUri(uri);
    } catch (e) {
      throw new FileError(`"uri": ${(e as Error).message}`);
    }
    if (!roots.length || !underRoots(ref, roots))
      throw new FileError(`${uri} is not under the storage roots allowed to tenant "${spec.tenant ?? 'default'}" (MODELQ_BATCH_ROOTS)`);
    if (!deps.objects) throw new FileError('this worker has no object stores for files by reference');
    const store = deps.objects.of(ref);
    const st = await store.stat(ref.key).catch(() => null);
    if (!st) throw new FileError(`cannot read ${uri}: it does not exist`);
    if (st.bytes > maxFile) throw new FileError(`${uri} is over ${maxFile} bytes (MODELQ_MAX_ROW_BYTES)`);
    return store.get(ref.key);
  };
}

/**
 * A file batch's JSONL line as an object, its id noted in `ref`; or why the row is an error (not a
 * JSON object, or a file the archive reader could not take, under ROW_ERROR_KEY). `name` is ` "<id>"`
 * (empty without an id), for the row's error messages.
 */
export function fileRowObject(line: string, ref: RowRef): { row: Record<string, unknown>; name: string } | { error: string } {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch {
    return { error: 'the line is not JSON' };
  }
  if (typeof row !== 'object' || row === null || Array.isArray(row)) return { error: 'the line is not a JSON object' };
  const r = row as Record<string, unknown>;
  if (r.id !== undefined) ref.id = idText(r.id);
  const name = r.id === undefined ? '' : ` ${JSON.stringify(r.id)}`;
  if (typeof r[ROW_ERROR_KEY] === 'string') return { error: `file${name}: ${r[ROW_ERROR_KEY]}` };
  return { row: r, name };
}

async function decodeRow(line: string, ref: RowRef, p: Processing, ctx: StepContext & { readUri?: UriReader }): Promise<Decoded> {
  const o = fileRowObject(line, ref);
  if ('error' in o) return { ref, error: o.error };
  const { row: r, name } = o;
  let feeds: Record<string, RawTensor> = {};
  const texts: Record<string, Encoded> = {};
  for (const step of p.inputs) {
    if (step.type === 'text') {
      const v = r[step.input];
      if (typeof v !== 'string') return { ref, error: `"${step.input}" must be a text (a JSON string)` };
      try {
        texts[step.input] = encodeText(await stepTokenizer(step, ctx.store), v, step);
      } catch (e) {
        return { ref, error: `text${name} ("${step.input}"): ${(e as Error).message}` };
      }
      continue;
    }
    const v = r[step.input] as { uri?: unknown } | undefined;
    const byUri = typeof v === 'object' && v !== null && typeof v.uri === 'string' ? v.uri : undefined;
    const f = byUri === undefined ? fileB64(v) : '';
    if (typeof f !== 'string') return { ref, error: `"${step.input}" ${f.error} (or {"uri": "..."})` };
    try {
      const file = byUri !== undefined && ctx.readUri ? await ctx.readUri(byUri) : Buffer.from(f, 'base64');
      feeds = { ...feeds, ...(await stepFeeds([file], step, ctx)) };
    } catch (e) {
      return { ref, error: `file${name} ("${step.input}"): ${(e as Error).message}` };
    }
  }
  return { ref, feeds, texts };
}

/** A run's feeds: its rows' file tensors stacked, its texts' tokens padded together. */
async function runFeeds(run: Extract<Decoded, { feeds: unknown }>[], p: Processing, ctx: StepContext): Promise<Record<string, RawTensor>> {
  const out = Object.keys(run[0]!.feeds).length ? stack(run.map((d) => d.feeds)) : {};
  for (const step of p.inputs) {
    if (step.type !== 'text') continue;
    const t = await stepTokenizer(step, ctx.store);
    Object.assign(
      out,
      textTensors(
        run.map((d) => d.texts[step.input]!),
        step,
        step.padId ?? t.padId,
      ),
    );
  }
  return out;
}

/** Row tensors [1, ...] stacked into one [n, ...]. */
function stack(rows: Record<string, RawTensor>[]): Record<string, RawTensor> {
  const out: Record<string, RawTensor> = {};
  for (const name of Object.keys(rows[0]!)) {
    const parts = rows.map((r) => r[name]!);
    const first = parts[0]!;
    const per = (first.data as Float32Array | Uint16Array).length;
    const data = first.data instanceof Uint16Array ? new Uint16Array(per * parts.length) : new Float32Array(per * parts.length);
    parts.forEach((t, i) => data.set(t.data as Float32Array & Uint16Array, i * per));
    out[name] = { type: first.type, dims: [parts.length, ...first.dims.slice(1)], data };
  }
  return out;
}

/**
 * A chunk of a batch of files by reference: its run of objects read whole, each as the JSONL row a
 * ZIP entry would be ({"id": its path, "<input>": {"b64"}}); one over the row limit, or gone, is its error row.
 */
async function objectRows(spec: BatchSpec, chunk: ScoreJob, deps: FileChunkDeps): Promise<string[]> {
  const src = spec.source!;
  const input = spec.model.processing!.inputs[0]!.input;
  const maxFile = Math.floor((((deps.cfg?.MODELQ_MAX_ROW_BYTES ?? 16 << 20) - 1024) * 3) / 4);
  const first = chunk.file ?? 0;
  const rows: string[] = [];
  for (let i = first; i < first + chunk.rows; i++) {
    const f = src.files[i];
    if (!f) throw new AppError('internal', `chunk ${chunk.index} names file ${i}, which batch ${spec.id} does not have`);
    if (!deps.objects) throw new AppError('internal', 'this worker has no object stores for batches by reference');
    const id = f.name ?? f.uri;
    if (f.bytes > maxFile) {
      rows.push(JSON.stringify({ id, [ROW_ERROR_KEY]: `the file is over ${maxFile} bytes (MODELQ_MAX_ROW_BYTES)` }));
      continue;
    }
    const { store, key } = deps.objects.resolve(f.uri);
    try {
      const bytes = await store.get(key);
      rows.push(`{"id":${JSON.stringify(id)},${JSON.stringify(input)}:{"b64":"${bytes.toString('base64')}"}}`);
    } catch (e) {
      // A file gone since listing is its row's error; a store that does not answer fails the chunk (retried).
      if ((e as { code?: string }).code !== 'ENOENT') throw new AppError('unavailable', `cannot read ${f.uri}: ${(e as Error).message}`);
      rows.push(JSON.stringify({ id, [ROW_ERROR_KEY]: `cannot read ${f.uri}: it is gone` }));
    }
  }
  return rows;
}

export async function scoreFileChunk(
  chunk: ScoreJob,
  spec: BatchSpec,
  deps: FileChunkDeps,
  job: Pick<Job, 'updateProgress'>,
  budget: ChunkBudget,
): Promise<{ completed: number; failed: number; part?: PartInfo }> {
  const p = spec.model.processing!;
  const maxFile = Math.floor((((deps.cfg?.MODELQ_MAX_ROW_BYTES ?? 16 << 20) - 1024) * 3) / 4);
  const ctx = { maxPixels: deps.cfg?.MODELQ_MAX_IMAGE_PIXELS, store: deps.store, readUri: uriReader(spec, deps, maxFile) };
  const path = await localModelPath(deps.store, spec.model.sha256, deps.cacheDir);
  const model: ModelHandle = { sha256: spec.model.sha256, path, label: `${spec.model.name}@${spec.model.version}` };
  const batchable = spec.model.inputs.every((t) => t.shape[0] === -1);
  const settings = { maxBatch: GROUP, maxDelayMs: 0, instances: 1, batchable };
  let lines: string[];
  if (spec.source?.each === 'file') lines = await objectRows(spec, chunk, deps);
  else if (spec.format === 'parquet') lines = await parquetFileRows(spec, chunk, deps, maxFile);
  else {
    const input = inputOf(spec, chunk, deps);
    const text = Buffer.from(await readRange(input.store, input.key, input.start, input.end)).toString('utf8');
    lines = text.split('\n').filter((l) => l.trim() !== '');
  }
  const sink = new PartSink(spec, chunk, deps.store, deps.objects);
  const tag = versionedOutput(spec) ? versionTag(spec.model.version) : '';
  let completed = 0;
  let failed = 0;
  const drift = await deps.drift?.forChunk(spec.model.name, spec.model.version, spec.tenant ?? 'default');
  const draw = chunkDrift(p, drift);
  // The next group's files decode (on libuv's threads) while the engine runs this group's.
  const decodeGroup = (g: number) => {
    const d = Promise.all(lines.slice(g, g + GROUP).map((l, i) => decodeRow(l, { n: chunk.firstRow + g + i, id: '' }, p, ctx)));
    d.catch(() => {}); // awaited below; not unhandled when the chunk fails first
    return d;
  };
  let ahead = lines.length ? decodeGroup(0) : undefined;
  try {
    for (let g = 0; g < lines.length; g += GROUP) {
      budget.check();
      const decoded = await ahead!;
      ahead = g + GROUP < lines.length ? decodeGroup(g + GROUP) : undefined;
      const good = decoded.filter((d): d is Extract<Decoded, { feeds: unknown }> => 'feeds' in d);
      let out = '';
      if (good.length) {
        const runs = batchable ? [good] : good.map((d) => [d]);
        for (const run of runs) {
          const feeds = await runFeeds(run, p, ctx);
          const after = draw(feeds, run.length); // before the run: the engine takes the feeds' buffers over
          const result = withPost(p, await deps.engine.infer(model, feeds, settings, batchable, budget.task().signal));
          after?.(result);
          out += outputLines(
            run.map((d) => d.ref),
            0,
            run.length,
            result,
            0,
            tag,
          );
        }
      }
      let err = '';
      for (const d of decoded) if ('error' in d) err += errorLine(d.ref.n, d.ref.id, errorData(new FileError(d.error)));
      await sink.pushOut(Buffer.from(out));
      await sink.pushErr(Buffer.from(err));
      completed += good.length;
      failed += decoded.length - good.length;
      await Promise.all([
        job.updateProgress({ rowsDone: g + decoded.length, rows: chunk.rows }),
        deps.batches.chunkProgress(chunk.batchId, chunk.index, g + decoded.length),
      ]);
    }
    const part = await sink.end();
    await drift?.flush();
    return { completed, failed, ...(part ? { part } : {}) };
  } catch (e) {
    sink.fail(e as Error);
    await sink.settled();
    throw e;
  }
}

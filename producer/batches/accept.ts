// Accepting a batch file: the bytes stream to the artifact store while rows are counted and chunk
// boundaries recorded (by rows and by bytes), then one BullMQ flow is enqueued (a `finalize`
// parent, one `score` child per chunk). Whatever refuses the file leaves nothing behind.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { BatchStore, type BatchView } from '../../core/batches.ts';
import { badRequest } from '../../core/errors.ts';
import { batchKeys, batchModel, type BatchSpec } from '../../core/jobs/batch.ts';
import { batchChunkJobOptions, defaultJobOptions } from '../../core/queues.ts';
import { checkCsvHeader, type CsvDelimiter, csvIgnoredColumns, jsonlIgnoredKeys } from '../../core/rows/parse.ts';
import { footerPlanBounded } from '../../core/rows/parquet-footer.ts';
import { ParquetShapeError, readFooter, type ParquetPlan } from '../../core/rows/parquet.ts';
import { HeaderTooLongError, RowScanner, type ScanResult } from '../../core/rows/scanner.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { TensorSpec } from '../../core/tensors.ts';
import type { ProducerDeps } from '../deps.ts';
import { batchExplain, batchExplainParams } from '../inference/explain.ts';
import { assertReadable } from '../model-access.ts';
import { type BatchFormat, decideFormat, type Declared, SNIFF_BYTES } from './sniff.ts';
import { checkFilesFormat, filesBody } from './zip-files.ts';
import { checkFileGroups, fileColumnInputs } from './parquet-files.ts';
import { batchVersions } from './versions.ts';
import { fileInputs } from '../../core/processing/pipeline.ts';
import { streamUpload } from './upload-stream.ts';

export type { BatchFormat, Declared };

export const batchParamsSchema = z.object({
  model: z.string().min(1).max(200).meta({ description: 'Model reference: name, name@alias or name@3' }),
  format: z.enum(['jsonl', 'csv', 'parquet']).optional().meta({
    description:
      "Default: recognised from the file's first bytes (Parquet's magic bytes, a JSON object per line, else a CSV header). A format declared here, by the content type or by the file name must match the bytes (400 otherwise)",
  }),
  chunkRows: z.coerce.number().int().min(1).max(100_000).optional().meta({
    description:
      'Rows per chunk job (default MODELQ_BATCH_CHUNK_ROWS); a chunk also ends at MODELQ_BATCH_CHUNK_BYTES; at most MODELQ_BATCH_MAX_CHUNKS chunks per batch (400 above)',
  }),
  delimiter: z
    .enum([',', ';', '|', 'tab'])
    .optional()
    .meta({ description: 'CSV field separator: , (default) ; | or tab. Only for CSV files (400 for another format)' }),
  metadata: z.string().max(4096).optional().meta({ description: 'A JSON object of string values, kept with the batch' }),
  outputFormat: z.enum(['jsonl', 'csv', 'parquet']).optional().meta({
    description:
      'The workers write the output parts in this format as they score (CSV and Parquet encoded on the engine threads), so a download in it (`?format=`) sends the parts as they are; without it the parts are JSONL and other formats are converted on download',
  }),
  shadowVersion: z.coerce.number().int().min(1).optional().meta({
    description:
      'A shadow batch: every row is also scored by this version of the model (same inputs), and the batch gets a comparison report (`GET /v1/batches/{id}/comparison`, the rows that differ at `.../comparison/diff`). JSONL parts only; not with explain',
  }),
  fileColumn: z.string().min(1).max(256).optional().meta({
    description:
      'A Parquet batch of files (a model with declared processing that takes one file, or such a pipeline): the binary column holding the files. Default: the column named as the file input',
  }),
  device: z.enum(['cpu', 'gpu']).optional().meta({ description: 'gpu: chunks go to the score-gpu queue, which only workers with MODELQ_DEVICE=cuda take' }),
  ...batchExplainParams,
});
export type BatchParams = z.infer<typeof batchParamsSchema>;

/** The view clients see (the spec stays inside). */
export const publicView = ({ spec: _spec, ...v }: BatchView & { spec?: BatchSpec }) => v;

function parseMetadata(s: string | undefined): Record<string, string> | undefined {
  if (s === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    throw badRequest('metadata must be a JSON object of string values');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw badRequest('metadata must be a JSON object of string values');
  }
  return v as Record<string, string>;
}

/**
 * Passes the bytes through while the scanner counts rows and marks chunk boundaries. On a refusal
 * the body is left open (not destroyed), so the 400 can still reach the client.
 */
async function* scanned(source: AsyncIterable<Buffer>, scanner: RowScanner, maxChunks: ChunkCap): AsyncGenerator<Buffer> {
  for await (const chunk of noDestroy(source)) {
    try {
      scanner.push(chunk);
    } catch (e) {
      if (e instanceof RangeError) throw badRequest(`the file has ${e.message}; the limit is MODELQ_BATCH_MAX_ROWS`);
      if (e instanceof HeaderTooLongError) throw badRequest(e.message);
      throw e;
    }
    checkChunks(scanner.chunkCount, maxChunks);
    yield chunk;
  }
}

interface ChunkCap {
  max: number;
  chunkRows: number;
}

/** A batch is one job per chunk: past MODELQ_BATCH_MAX_CHUNKS it is refused, naming the limit and the way out. */
function checkChunks(chunks: number, { max, chunkRows }: ChunkCap, format: BatchFormat = 'jsonl'): void {
  if (chunks <= max) return;
  if (format === 'parquet')
    throw badRequest(`the file has ${chunks} row groups, one chunk each; the limit is MODELQ_BATCH_MAX_CHUNKS (${max}): write it with larger row groups`);
  throw badRequest(
    `the batch would have more than ${max} chunks at chunkRows=${chunkRows} (the limit is MODELQ_BATCH_MAX_CHUNKS): send a larger chunkRows, or split the file`,
  );
}

/**
 * The body's first `n` bytes (fewer when it is shorter), and the whole body again, those bytes
 * included, for the store. Like noDestroy, stopping early leaves the body open.
 */
async function peek(body: AsyncIterable<Buffer>, n: number): Promise<{ head: Buffer; whole: AsyncIterable<Buffer> }> {
  const it = noDestroy(body)[Symbol.asyncIterator]();
  const first: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < n) {
    const r = await it.next();
    if (r.done) {
      ended = true;
      break;
    }
    first.push(r.value);
    size += r.value.length;
  }
  async function* whole(): AsyncGenerator<Buffer> {
    try {
      yield* first;
      if (ended) return;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    } finally {
      await it.return?.();
    }
  }
  return { head: Buffer.concat(first).subarray(0, n), whole: whole() };
}

/** Iterates a request body without destroying it when iteration stops early (so a 400 can still be sent). */
function noDestroy(source: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  return 'iterator' in source && typeof (source as Readable).iterator === 'function' ? (source as Readable).iterator({ destroyOnReturn: false }) : source;
}

export interface AcceptOptions {
  /**
   * Awaited after the file is stored and before anything is created or enqueued; a rejection
   * refuses the batch (multipart: the rest of the form must be read and valid first).
   */
  commitGate?: () => Promise<void>;
}

/** Streams one file to the store and enqueues its flow; the answer is the batch as accepted. */
/** Bytes [start, end) of a stored object. */
export async function readRange(store: ArtifactStore, key: string, start: number, end: number): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const b of await store.read(key, { start, end })) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/**
 * A stored Parquet file's plan and row groups (chunks), read from its footer alone: a footer past
 * MODELQ_PARQUET_MAX_FOOTER_BYTES is refused unread, a large one parsed off the event loop (parquet-footer.ts).
 */
async function scanParquet(d: ProducerDeps, key: string, bytes: number, inputs: TensorSpec[]): Promise<ScanResult & { plan: ParquetPlan; ignored: string[] }> {
  try {
    const footer = await readFooter((s, e) => readRange(d.store, key, s, e), bytes, d.cfg.MODELQ_PARQUET_MAX_FOOTER_BYTES);
    const { plan, chunks, rows, ignored } = await footerPlanBounded(
      { footer, fileBytes: bytes, inputs, groupRows: d.cfg.MODELQ_PARQUET_MAX_GROUP_ROWS },
      d.cfg.MODELQ_PARQUET_FOOTER_TIMEOUT,
    );
    // The same limit as JSONL and CSV rows, counted from the footer.
    if (rows > d.cfg.MODELQ_BATCH_MAX_ROWS) throw badRequest(`the file has ${rows} rows; the limit is MODELQ_BATCH_MAX_ROWS (${d.cfg.MODELQ_BATCH_MAX_ROWS})`);
    return { bytes, rows, chunks, plan, ignored };
  } catch (e) {
    if (e instanceof ParquetShapeError) throw badRequest(e.message);
    throw e;
  }
}

export async function acceptBatch(
  d: ProducerDeps,
  params: BatchParams,
  body: AsyncIterable<Buffer>,
  declaredByRequest: Declared | null,
  tenant: string,
  opts: AcceptOptions = {},
): Promise<BatchView> {
  const batches = new BatchStore(d.redis, d.prefix);
  await assertReadable(d.registry, params.model, tenant); // another tenant's private model is "not found"
  const versions = await batchVersions(d.registry, params.model, params.shadowVersion, {
    explain: params.explain === 'true',
    ...(params.outputFormat ? { outputFormat: params.outputFormat } : {}),
  });
  const model = versions.model;
  const chunkRows = params.chunkRows ?? d.cfg.MODELQ_BATCH_CHUNK_ROWS;
  const chunkCap = { max: d.cfg.MODELQ_BATCH_MAX_CHUNKS, chunkRows };
  const metadata = parseMetadata(params.metadata);
  const explain = batchExplain(model, params, d.cfg.MODELQ_EXPLAIN_MAX_EVALS);
  if (explain?.method === 'occlusion' && params.outputFormat && params.outputFormat !== 'jsonl')
    throw badRequest(`outputFormat=${params.outputFormat}: an explained text batch has a list of words per row, of varying length; its output is JSONL only`);
  // The format: what the first bytes are, which must be what was declared, if anything was.
  const peeked = await peek(body, SNIFF_BYTES);
  // A model with declared processing takes files: a ZIP or tar of them becomes JSONL rows (zip-files.ts, tar-files.ts).
  // So does a pipeline (of files, or of tensors in JSONL rows), whose rows its own scorer reads.
  const fileNames = fileInputs(model) ?? (model.pipeline ? model.pipeline.inputs.map((i) => i.name) : undefined);
  const files =
    fileNames &&
    (await peek(filesBody(model, fileNames, !!explain, peeked, d.cfg.MODELQ_MAX_ROW_BYTES, d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024), SNIFF_BYTES));
  const { head, whole } = files || peeked;
  const format = decideFormat(head, params.format ? { format: params.format, by: `format=${params.format}` } : declaredByRequest);
  if (files) checkFilesFormat(model, format, !!model.pipeline && !fileInputs(model));
  if (params.fileColumn !== undefined && !(files && format === 'parquet'))
    throw badRequest(`fileColumn names the column of files of a Parquet batch for a model that takes files; this batch is ${format} for model ${model.name}`);
  if (params.delimiter && params.delimiter !== ',' && format !== 'csv')
    throw badRequest(`delimiter=${params.delimiter} is for CSV files; this file is ${format === 'jsonl' ? 'JSONL' : 'Parquet'}`);
  const delimiter: CsvDelimiter = params.delimiter === 'tab' ? '\t' : (params.delimiter ?? ',');
  const id = `batch_${randomBytes(10).toString('hex')}`;
  const inputKey = batchKeys.input(id);
  const scanner = new RowScanner(format === 'parquet' ? 'jsonl' : format, {
    chunkRows,
    chunkBytes: d.cfg.MODELQ_BATCH_CHUNK_BYTES,
    maxRows: d.cfg.MODELQ_BATCH_MAX_ROWS,
    maxHeaderBytes: d.cfg.MODELQ_MAX_ROW_BYTES,
  });
  const queueName = params.device === 'gpu' ? 'score-gpu' : 'score';
  const maxBytes = d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024;
  /** The spec once the CSV header is known (refusing a header that cannot feed the model). */
  const specOf = (scan: Pick<ScanResult, 'bytes' | 'rows' | 'header'> & { chunks: number; plan?: ParquetPlan; ignored?: string[] }): BatchSpec => {
    if (format === 'csv') {
      const problem = checkCsvHeader(scan.header ?? '', model.inputs, delimiter);
      if (problem) throw badRequest(problem);
    }
    // Columns the model does not take (the target, notes) are left out of scoring and listed.
    const ignoredColumns =
      format === 'csv'
        ? csvIgnoredColumns(scan.header ?? '', model.inputs, delimiter)
        : format === 'jsonl'
          ? jsonlIgnoredKeys(head, model.inputs)
          : (scan.ignored ?? []);
    const now = Date.now();
    return {
      id,
      tenant,
      model: batchModel(model),
      format,
      inputKey,
      bytes: scan.bytes,
      totalRows: scan.rows,
      chunks: scan.chunks,
      chunkRows,
      ...(scan.header !== undefined ? { header: scan.header } : {}),
      ...(delimiter !== ',' ? { delimiter } : {}),
      ...(scan.plan ? { parquet: scan.plan } : {}),
      ...(metadata ? { metadata } : {}),
      ...(ignoredColumns.length ? { ignoredColumns } : {}),
      ...(explain ? { explain } : {}),
      ...(versions.route ? { route: versions.route } : {}),
      ...(versions.shadow ? { shadow: versions.shadow } : {}),
      // Parts in a format of their own go under the batch's own prefix, as a batch by reference's go under its output.
      ...(params.outputFormat ? { output: { uri: `store:${batchKeys.dir(id)}/parts/`, format: params.outputFormat } } : {}),
      createdAt: new Date(now).toISOString(),
      expiresAt: new Date(now + d.cfg.MODELQ_BATCH_TTL).toISOString(),
    };
  };
  // A JSONL/CSV body sent alone (not a form, whose other fields must be read first) is scored while it
  // arrives: each chunk is stored and enqueued as soon as it closes (upload-stream.ts).
  if (format !== 'parquet' && !files && !opts.commitGate) {
    const { rows, chunks } = await streamUpload(d, whole, {
      id,
      scanner,
      queueName,
      maxBytes,
      maxChunks: chunkCap.max,
      chunkRows,
      specAt: (header) => ({
        ...specOf({ bytes: 0, rows: 0, chunks: 0, ...(header !== undefined ? { header } : {}) }),
        inputKey: `${inputKey}-`,
        inputParts: true,
      }),
    });
    d.logger.info({ batch: id, model: `${model.name}@${model.version}`, rows, chunks }, 'batch accepted (scored as it arrived)');
    return publicView((await batches.view(id))!);
  }
  let scan: ScanResult & { plan?: ParquetPlan; ignored?: string[] };
  let accepted: BatchView;
  try {
    if (format === 'parquet') {
      // Row groups are found in the footer, at the end: store the file first, then read it.
      const stored = await d.store.put(inputKey, whole, { maxBytes });
      // A model that takes files reads them from binary columns, a row group a chunk (parquet-files.ts).
      scan = await scanParquet(d, inputKey, stored.bytes, files && fileNames ? fileColumnInputs(model, fileNames, params.fileColumn) : model.inputs);
      if (files) checkFileGroups(scan.chunks, d.cfg.MODELQ_BATCH_CHUNK_BYTES);
    } else {
      await d.store.put(inputKey, scanned(whole, scanner, chunkCap), { maxBytes });
      scan = scanner.end();
    }
    checkChunks(scan.chunks.length, chunkCap, format);
    if (scan.rows === 0) throw badRequest(scan.bytes === 0 ? 'the file is empty' : 'the file has no rows');
    const spec = specOf({ ...scan, chunks: scan.chunks.length });
    await opts.commitGate?.();
    await batches.create(spec);
    // The answer describes the batch as accepted: a worker may start on it the moment it is enqueued.
    accepted = publicView((await batches.view(id))!);
    await d.queues.flowProducer().add({
      name: 'finalize',
      queueName: 'batch',
      data: { batchId: id },
      opts: { ...defaultJobOptions.batch, jobId: id },
      children: scan.chunks.map((c) => ({
        name: 'score',
        queueName,
        data: { batchId: id, index: c.index, start: c.start, end: c.end, firstRow: c.firstRow, rows: c.rows },
        opts: batchChunkJobOptions(queueName, `${id}-${c.index}`),
      })),
    });
  } catch (e) {
    // Not accepted: leave nothing behind.
    await d.store.deletePrefix(batchKeys.dir(id)).catch(() => {});
    await batches.remove(id).catch(() => {});
    throw e;
  }
  d.logger.info({ batch: id, model: `${model.name}@${model.version}`, rows: scan.rows, chunks: scan.chunks.length }, 'batch accepted');
  return accepted;
}

// Planning a batch by reference without reading its data: the input URIs are listed (a prefix, a
// glob, a list), and each object is cut into chunks from its own structure: Parquet row groups from
// its footer (a bounded read, parsed off the event loop for large footers), JSONL/CSV byte ranges
// that the workers align on line ends when they read them (core/rows/line-range.ts). A CSV file's
// header line is the one other thing read. Anything that cannot be read is a 400 naming the object.
import { badRequest } from '../../core/errors.ts';
import type { BatchSource } from '../../core/jobs/batch.ts';
import { checkCsvHeader } from '../../core/rows/parse.ts';
import { footerPlanBounded } from '../../core/rows/parquet-footer.ts';
import { ParquetShapeError, readFooter } from '../../core/rows/parquet.ts';
import type { ArtifactStore, ListedObject } from '../../core/storage/index.ts';
import { globRegExp, isGlob, literalPrefix, type ObjectRef, type ObjectStores, uriOf } from '../../core/storage/object-uris.ts';
import type { TensorSpec } from '../../core/tensors.ts';
import type { ProducerDeps } from '../deps.ts';
import { type BatchFormat, declaredByFileName, sniff, SNIFF_BYTES } from './sniff.ts';

/** One chunk job of a batch by reference: bytes [start, end) of file `file` (a row group for Parquet). */
export interface PlannedChunk {
  file: number;
  start: number;
  end: number;
  /** Parquet: the row group's first row in its file and its rows; JSONL/CSV: 0 and 0 (not counted). */
  firstRow: number;
  rows: number;
}

export interface ReferencePlan {
  format: BatchFormat;
  files: BatchSource['files'];
  chunks: PlannedChunk[];
  /** Parquet: counted from the footers; JSONL/CSV: 0 (counted as they are scored). */
  rows: number;
  bytes: number;
}

/** Files planned at once (each a footer or header read). */
const PLAN_CONCURRENCY = 8;

/** A store's error as a 400 that names the object (a missing bucket, access denied, a corrupt file). */
const unreadable = (uri: string, e: unknown) =>
  badRequest(`cannot read ${uri}: ${(e as Error).name === 'Error' ? '' : `${(e as Error).name}: `}${(e as Error).message}`);

/** Objects of one input URI: a glob's matches, a prefix's objects, or the object itself; hidden ones (`_x`, `.x`) and empty ones left out. */
async function listOne(store: ArtifactStore, ref: ObjectRef, max: number): Promise<ListedObject[]> {
  const visible = (base: string) => (o: ListedObject) =>
    o.bytes > 0 &&
    !o.key
      .slice(base.length)
      .split('/')
      .some((s) => s.startsWith('_') || s.startsWith('.'));
  try {
    if (isGlob(ref.key)) {
      const base = literalPrefix(ref.key);
      const re = globRegExp(ref.key);
      return (await store.list(base, max * 10)).filter((o) => re.test(o.key)).filter(visible(base.slice(0, base.lastIndexOf('/') + 1)));
    }
    if (ref.key && !ref.key.endsWith('/')) {
      const st = await store.stat(ref.key);
      if (st) return st.bytes > 0 ? [{ key: ref.key, bytes: st.bytes }] : [];
    }
    const base = ref.key && !ref.key.endsWith('/') ? `${ref.key}/` : ref.key;
    return (await store.list(base, max + 1)).filter(visible(base));
  } catch (e) {
    throw unreadable(uriOf(ref), e);
  }
}

/** Every object the input names, in the order given (each URI's objects in key order), each once. */
export async function listInputs(objects: ObjectStores, refs: ObjectRef[], maxFiles: number): Promise<{ uri: string; bytes: number }[]> {
  const seen = new Set<string>();
  const out: { uri: string; bytes: number }[] = [];
  for (const ref of refs) {
    const found = await listOne(objects.of(ref), ref, maxFiles);
    if (!found.length) throw badRequest(`input.uri: no objects at ${uriOf(ref)} (a missing prefix, or only empty or hidden objects)`);
    for (const o of found) {
      const uri = uriOf(ref, o.key);
      if (seen.has(uri)) continue;
      seen.add(uri);
      out.push({ uri, bytes: o.bytes });
      if (out.length > maxFiles) throw badRequest(`input.uri names more than ${maxFiles} objects (MODELQ_BATCH_MAX_CHUNKS); name fewer or larger files`);
    }
  }
  return out;
}

/** Bytes [start, end) of an object. */
async function readRange(store: ArtifactStore, key: string, start: number, end: number): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const b of await store.read(key, { start, end })) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

/** The format: declared, else from the names (all must agree), else from the first object's first bytes. */
async function formatOf(objects: ObjectStores, files: { uri: string; bytes: number }[], declared: BatchFormat | undefined): Promise<BatchFormat> {
  if (declared) return declared;
  const byName = new Set(files.map((f) => declaredByFileName(f.uri)?.format));
  if (byName.size > 1)
    throw badRequest(
      `input: the objects are of several formats (${[...byName].map((f) => f ?? 'unknown').join(', ')}); name one format's files, or say input.format`,
    );
  const only = [...byName][0];
  if (only) return only;
  const first = files[0]!;
  const { store, key } = objects.resolve(first.uri);
  let head: Uint8Array;
  try {
    head = await readRange(store, key, 0, Math.min(first.bytes, SNIFF_BYTES));
  } catch (e) {
    throw unreadable(first.uri, e);
  }
  const seen = sniff(head);
  if (!seen.format) throw badRequest(`input: cannot read ${first.uri}: its bytes are ${seen.what}; say input.format, or use .jsonl, .csv or .parquet names`);
  return seen.format;
}

/** A CSV object's header line, read in growing steps up to MODELQ_MAX_ROW_BYTES. */
async function csvHeader(store: ArtifactStore, key: string, uri: string, bytes: number, maxBytes: number): Promise<string> {
  for (let n = Math.min(bytes, 64 * 1024); ; n = Math.min(bytes, n * 4, maxBytes + 1)) {
    const head = Buffer.from(await readRange(store, key, 0, n));
    const nl = head.indexOf(10);
    if (nl >= 0) return head.subarray(0, nl).toString('utf8').replace(/\r$/, '');
    if (n >= bytes) return head.toString('utf8').replace(/\r$/, '');
    if (n > maxBytes) throw badRequest(`the CSV header of ${uri} is longer than ${maxBytes} bytes (MODELQ_MAX_ROW_BYTES)`);
  }
}

/** One object's chunks (and, per format, its header or column plan). */
async function planFile(
  d: ProducerDeps,
  f: { uri: string; bytes: number },
  format: BatchFormat,
  inputs: TensorSpec[],
  chunkBytes: number,
): Promise<{ file: BatchSource['files'][number]; chunks: Omit<PlannedChunk, 'file'>[]; rows: number }> {
  const { store, key } = d.objects.resolve(f.uri);
  if (format === 'parquet') {
    try {
      const footer = await readFooter((s, e) => readRange(store, key, s, e), f.bytes, d.cfg.MODELQ_PARQUET_MAX_FOOTER_BYTES);
      const { plan, chunks, rows } = await footerPlanBounded(
        { footer, fileBytes: f.bytes, inputs, groupRows: d.cfg.MODELQ_PARQUET_MAX_GROUP_ROWS },
        d.cfg.MODELQ_PARQUET_FOOTER_TIMEOUT,
      );
      return { file: { ...f, parquet: plan }, chunks: chunks.map((c) => ({ start: c.start, end: c.end, firstRow: c.firstRow, rows: c.rows })), rows };
    } catch (e) {
      if (e instanceof ParquetShapeError) throw badRequest(`${f.uri}: ${e.message}`);
      throw unreadable(f.uri, e);
    }
  }
  let header: string | undefined;
  if (format === 'csv') {
    try {
      header = await csvHeader(store, key, f.uri, f.bytes, d.cfg.MODELQ_MAX_ROW_BYTES);
    } catch (e) {
      if ((e as { httpStatus?: number }).httpStatus === 400) throw e;
      throw unreadable(f.uri, e);
    }
    const problem = checkCsvHeader(header, inputs);
    if (problem) throw badRequest(`${f.uri}: ${problem}`);
  }
  const chunks: Omit<PlannedChunk, 'file'>[] = [];
  for (let s = 0; s < f.bytes; s += chunkBytes) chunks.push({ start: s, end: Math.min(f.bytes, s + chunkBytes), firstRow: 0, rows: 0 });
  return { file: { ...f, ...(header !== undefined ? { header } : {}) }, chunks, rows: 0 };
}

/** Plans every object, a few at a time, keeping their order; refuses more than MODELQ_BATCH_MAX_CHUNKS chunks. */
export async function planReference(
  d: ProducerDeps,
  files: { uri: string; bytes: number }[],
  declared: BatchFormat | undefined,
  inputs: TensorSpec[],
  chunkBytes: number,
): Promise<ReferencePlan> {
  const format = await formatOf(d.objects, files, declared);
  const planned: Awaited<ReturnType<typeof planFile>>[] = new Array(files.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PLAN_CONCURRENCY, files.length) }, async () => {
      while (next < files.length) {
        const i = next++;
        planned[i] = await planFile(d, files[i]!, format, inputs, chunkBytes);
      }
    }),
  );
  const chunks = planned.flatMap((p, file) => p.chunks.map((c) => ({ file, ...c })));
  const max = d.cfg.MODELQ_BATCH_MAX_CHUNKS;
  if (chunks.length > max)
    throw badRequest(
      `the input makes ${chunks.length} chunks; the limit is MODELQ_BATCH_MAX_CHUNKS (${max}): send a larger chunkBytes, or larger Parquet row groups`,
    );
  const rows = planned.reduce((n, p) => n + p.rows, 0);
  if (rows > d.cfg.MODELQ_BATCH_MAX_ROWS) throw badRequest(`the input has ${rows} rows; the limit is MODELQ_BATCH_MAX_ROWS (${d.cfg.MODELQ_BATCH_MAX_ROWS})`);
  if (!chunks.length) throw badRequest('the input has no rows');
  return { format, files: planned.map((p) => p.file), chunks, rows, bytes: files.reduce((n, f) => n + f.bytes, 0) };
}

// A ZIP of files for a model with declared processing becomes, as it streams in, the JSONL every
// batch of files is: one row per file, {"id": "<file name>", "<input>": {"b64": "..."}}, in the
// archive's order. Nothing is decoded here (the workers decode); the rows are only re-encoded.
// fflate's streaming Unzip reads the local headers as the bytes arrive, so the archive is never held
// whole; a deflated entry is inflated by Node's zlib (native) once its compressed bytes are in, which
// costs a fraction of fflate's JavaScript inflate. A file larger than a row may be is one row naming
// it with the reason, scored as an error row.
import zlib from 'node:zlib';
import { Unzip, type AsyncFlateStreamHandler, type UnzipDecoder, type UnzipFile } from 'fflate';
import { badRequest } from '../../core/errors.ts';
import { ROW_ERROR_KEY } from '../../core/processing/request.ts';
import { isGzip, isTar, tarAsJsonl } from './tar-files.ts';

export const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/** Whether the body starts as a ZIP archive does. */
export const isZip = (head: Buffer) => head.length >= 4 && head.subarray(0, 4).equals(ZIP_MAGIC);

/** Entries that are no files of the batch: folders, and the resource forks macOS adds. */
const skipped = (name: string) => name.endsWith('/') || name.startsWith('__MACOSX/') || /(^|\/)\.DS_Store$/.test(name);

/** An entry whose file is over the limit (said by the decoder instead of its bytes). */
class OverLimit extends Error {}

/**
 * A decoder of deflated entries (method 8) for fflate's Unzip: the compressed bytes are kept until
 * the entry's end, then inflated at once by zlib, at most `maxBytes` out. Deflate codes no byte in
 * more than 15 bits, so compressed bytes past twice the limit (and a little) mean a file over it:
 * refused there, and never held beyond.
 */
function zlibInflate(maxBytes: number) {
  return class ZlibInflate implements UnzipDecoder {
    static compression = 8;
    ondata: AsyncFlateStreamHandler = () => {};
    private parts: Buffer[] = [];
    private size = 0;
    private done = false;

    push(chunk: Uint8Array, final: boolean): void {
      if (this.done) return;
      this.size += chunk.length;
      if (this.size > 2 * maxBytes + 1024) return this.end(new OverLimit(), new Uint8Array(0));
      this.parts.push(Buffer.from(chunk)); // a copy: the chunk is fflate's
      if (!final) return;
      let out: Buffer;
      try {
        out = zlib.inflateRawSync(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts), { maxOutputLength: Math.max(1, maxBytes) });
      } catch (e) {
        // Past maxOutputLength, zlib says the buffer would be too large.
        return this.end((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? new OverLimit() : (e as Error), new Uint8Array(0));
      }
      this.end(null, out);
    }

    terminate(): void {
      this.done = true;
      this.parts = [];
    }

    private end(err: Error | null, data: Uint8Array): void {
      this.terminate();
      this.ondata(err as Parameters<AsyncFlateStreamHandler>[0], data as Parameters<AsyncFlateStreamHandler>[1], true);
    }
  };
}

/**
 * The archive's files as JSONL rows feeding `input`. A file over `maxFileBytes` is not kept: its row
 * names it; its inflation is stopped at once.
 */
export async function* zipAsJsonl(body: AsyncIterable<Buffer>, input: string, maxFileBytes: number): AsyncGenerator<Buffer> {
  const ready: Buffer[] = [];
  let failure: Error | undefined;
  let files = 0;
  const unzip = new Unzip((file: UnzipFile) => {
    if (skipped(file.name)) return;
    files++;
    const parts: Uint8Array[] = [];
    let size = 0;
    let over = false;
    file.ondata = (err, data, final) => {
      if (over) return;
      if (err && !(err instanceof OverLimit)) {
        failure ??= badRequest(`the ZIP archive does not inflate at "${file.name.slice(0, 200)}": ${err.message}`);
        return;
      }
      size += data.length;
      if (err || size > maxFileBytes) {
        over = true;
        ready.push(Buffer.from(`${JSON.stringify({ id: file.name, [ROW_ERROR_KEY]: `the file is over ${maxFileBytes} bytes (MODELQ_MAX_ROW_BYTES)` })}\n`));
        file.terminate();
        return;
      }
      parts.push(data);
      if (!final) return;
      const bytes = parts.length === 1 ? Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength) : Buffer.concat(parts);
      ready.push(Buffer.from(`{"id":${JSON.stringify(file.name)},${JSON.stringify(input)}:{"b64":"${bytes.toString('base64')}"}}\n`));
    };
    try {
      file.start();
    } catch (e) {
      failure ??= badRequest(
        `the ZIP archive's "${file.name.slice(0, 200)}" uses a compression this reader lacks (${(e as Error).message}): store or deflate it`,
      );
    }
  });
  unzip.register(zlibInflate(maxFileBytes));
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      unzip.push(chunk, final);
    } catch (e) {
      failure ??= badRequest(`the ZIP archive does not read: ${(e as Error).message}`);
    }
  };
  for await (const chunk of body) {
    push(chunk, false);
    if (failure) throw failure;
    while (ready.length) yield ready.shift()!;
  }
  push(new Uint8Array(0), true);
  if (failure) throw failure;
  while (ready.length) yield ready.shift()!;
  if (!files) throw badRequest('the ZIP archive has no files');
}

/**
 * The body of a batch for a model with declared processing: a ZIP (above) or a tar, plain or
 * gzipped (tar-files.ts), becomes JSONL rows; JSONL
 * passes as it is. An explained batch, or one whose model takes files for several inputs as a ZIP, is refused.
 */
export function filesBody(
  model: { name: string },
  inputs: string[],
  explain: boolean,
  peeked: { head: Buffer; whole: AsyncIterable<Buffer> },
  maxRowBytes: number,
  maxArchiveBytes = Infinity,
): AsyncIterable<Buffer> {
  const steps = inputs.map((input) => ({ input }));
  if (explain) throw badRequest(`model ${model.name} takes files (declared processing) or is a pipeline: its batches cannot be explained yet`);
  const zip = isZip(peeked.head);
  const tar = isTar(peeked.head);
  const gzip = isGzip(peeked.head);
  if (!zip && !tar && !gzip) return peeked.whole;
  if (steps.length !== 1)
    throw badRequest(`model ${model.name} takes files for ${steps.length} inputs: send JSONL rows of {"id", ${steps.map((s) => `"${s.input}"`).join(', ')}}`);
  // A row is its file in base64 (4 characters per 3 bytes) and a little JSON around it.
  const maxFile = Math.floor(((maxRowBytes - 1024) * 3) / 4);
  return zip ? zipAsJsonl(peeked.whole, steps[0]!.input, maxFile) : tarAsJsonl(peeked.whole, steps[0]!.input, maxFile, maxArchiveBytes, gzip);
}

/** After the format is decided: files come in JSONL (or a ZIP or tar, turned into JSONL), or in a Parquet file's binary columns. */
export function checkFilesFormat(model: { name: string }, format: string, tensorPipeline = false): void {
  if (format === 'parquet' && tensorPipeline) throw badRequest(`model ${model.name} is a pipeline of tensors: send JSONL rows of its inputs, not Parquet`);
  if (format === 'csv')
    throw badRequest(
      `model ${model.name} takes files (declared processing): send a ZIP or tar of them, JSONL rows of {"id", "<input>": {"b64": "..."}}, or a Parquet file with a binary column of them, not CSV`,
    );
}

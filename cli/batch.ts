// `modelq batch ...`: submit a file (streamed, never read whole), follow a batch with a progress
// bar, print its status, download its output or errors, cancel it. Each action returns the exit
// code: 0 done, 1 the batch failed or was cancelled; failures of the call itself throw CliError (2).
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asyncBufferFromFile, parquetMetadataAsync } from 'hyparquet';
import type { BatchView } from '../core/batches.ts';
import { CliError, sendJson, type Client } from './client.ts';
import { createProgress, formatDuration, type ProgressDisplay } from './progress.ts';

export type Format = 'jsonl' | 'csv' | 'parquet';

const CONTENT_TYPE: Record<Format, string> = { jsonl: 'application/x-ndjson', csv: 'text/csv', parquet: 'application/vnd.apache.parquet' };
const FINAL = new Set(['completed', 'failed', 'cancelled']);

export interface SubmitOptions {
  model: string;
  /** Print the batch (and with --wait its final state) as JSON. */
  json?: boolean;
  /** By reference: the input is read by the platform from this URI (no upload) ... */
  inputUri?: string;
  /** ... and the output written to this one. */
  outputUri?: string;
  format?: Format;
  chunkRows?: number;
  metadata?: string;
  wait?: boolean;
  /** Poll interval while waiting (default 500 ms; the server's own event stream ticks at the same pace). */
  pollMs?: number;
}

function openInput(file: string): { body: Readable; size?: number } {
  if (file === '-') return { body: process.stdin };
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!st.isFile()) throw new CliError(`${file} is not a file`);
  // Read exactly the size we announce, even if the file grows meanwhile.
  return { body: fs.createReadStream(file, st.size > 0 ? { end: st.size - 1 } : {}), size: st.size };
}

/** The format a file name declares by its extension, if any. */
export function formatOfName(file: string): Format | undefined {
  if (/\.csv$/i.test(file)) return 'csv';
  if (/\.(parquet|pq)$/i.test(file)) return 'parquet';
  if (/\.(jsonl|ndjson)$/i.test(file)) return 'jsonl';
  return undefined;
}

/** Submits FILE (streamed), or with inputUri a by-reference batch: a JSON body naming where the platform reads and writes. */
export async function submit(client: Client, file: string | undefined, o: SubmitOptions): Promise<number> {
  // Declared by --format or the file's extension; otherwise the server recognises it from the bytes
  // (and refuses, naming both, a declared format the bytes do not match).
  const format = o.format ?? (file ? formatOfName(file) : o.inputUri ? formatOfName(o.inputUri) : undefined);
  const q = new URLSearchParams({ model: o.model });
  if (format) q.set('format', format);
  if (o.chunkRows !== undefined) q.set('chunkRows', String(o.chunkRows));
  if (o.metadata !== undefined) q.set('metadata', o.metadata);
  let accepted: BatchView;
  if (o.inputUri) {
    if (file) throw new CliError('give a FILE or --input-uri, not both');
    const body = { input: { uri: o.inputUri, ...(format ? { format } : {}) }, ...(o.outputUri ? { output: { uri: o.outputUri } } : {}) };
    accepted = await sendJson<BatchView>(client, 'POST', `v1/batches?${q}`, body);
  } else {
    if (!file) throw new CliError('give a FILE (- reads stdin), or --input-uri for a batch by reference');
    if (o.outputUri) throw new CliError('--output-uri goes with --input-uri (a batch by reference)');
    const input = openInput(file);
    const headers: Record<string, string | number> = { 'content-type': format ? CONTENT_TYPE[format] : 'application/octet-stream' };
    if (input.size !== undefined) headers['content-length'] = input.size;
    accepted = await client.json<BatchView>('POST', `v1/batches?${q}`, { body: input.body, headers });
  }
  if (o.json && !o.wait) {
    process.stdout.write(`${JSON.stringify(accepted, null, 2)}\n`);
    return 0;
  }
  if (!o.json) process.stdout.write(`${accepted.id}\n`);
  if (!o.wait) return 0;
  return follow(client, accepted, o.pollMs ?? 500, createProgress(), o.json);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether a failed status poll is worth retrying: nothing answered, or a gateway/Redis hiccup. */
const transient = (e: unknown) => e instanceof CliError && (e.status === undefined || e.status === 502 || e.status === 503 || e.status === 504);

/** Polls the batch until it ends, drawing progress; prints the final counts and returns the exit code. */
export async function follow(client: Client, first: BatchView, pollMs: number, display: ProgressDisplay = createProgress(), json = false): Promise<number> {
  const started = Date.now();
  let v = first;
  const onSigint = () => {
    display.stop();
    process.stderr.write(`modelq: stopped following ${v.id}; the batch goes on (modelq batch cancel ${v.id} stops it)\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    let failingSince: number | undefined;
    display.update(v);
    while (!FINAL.has(v.status)) {
      await sleep(pollMs);
      try {
        v = await client.json<BatchView>('GET', `v1/batches/${encodeURIComponent(v.id)}`);
        failingSince = undefined;
      } catch (e) {
        // Over a rate limit (MODELQ_RATE_LIMIT): wait as told and go on; it is not a failure.
        if (e instanceof CliError && e.status === 429) {
          await sleep(Math.min(60, e.retryAfterS ?? 1) * 1000);
          continue;
        }
        // A restarting producer should not end a long wait; 30 s of failures in a row does.
        failingSince ??= Date.now();
        if (!transient(e) || Date.now() - failingSince > 30_000) throw e;
        continue;
      }
      display.update(v);
    }
  } finally {
    display.stop();
    process.removeListener('SIGINT', onSigint);
  }
  const c = v.requestCounts;
  if (json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
  else
    process.stdout.write(
      `status: ${v.status} (${formatDuration((Date.now() - started) / 1000)})\n` +
        `requestCounts: { total: ${c.total}, completed: ${c.completed}, failed: ${c.failed} }\n`,
    );
  if (v.error) process.stderr.write(`modelq: batch ${v.id} ${v.status}: ${v.error}\n`);
  if (c.failed > 0) process.stderr.write(`${c.failed} row(s) failed; see them with: modelq batch download ${v.id} --errors\n`);
  return v.status === 'completed' ? 0 : 1;
}

export async function status(client: Client, id: string): Promise<number> {
  const v = await client.json<BatchView>('GET', `v1/batches/${encodeURIComponent(id)}`);
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
  return 0;
}

export interface DownloadOptions {
  json?: boolean;
  output?: string;
  errors?: boolean;
  format?: Format;
}

/** Counts newline bytes passing through, for the closing summary. */
class LineCounter extends Transform {
  lines = 0;
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null, data?: Buffer) => void) {
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    done(null, chunk);
  }
}

export async function download(client: Client, id: string, o: DownloadOptions): Promise<number> {
  if (o.errors && o.format && o.format !== 'jsonl') throw new CliError(`--format ${o.format} applies to the output; the error file is JSONL`);
  const enc = encodeURIComponent(id);
  // The routes serve the chunks scored so far; say so rather than let a partial file pass as whole.
  const v = await client.json<BatchView>('GET', `v1/batches/${enc}`);
  if (!FINAL.has(v.status)) process.stderr.write(`modelq: batch ${v.id} is ${v.status}; the download holds only the chunks finished so far\n`);
  const q = o.format ? `?format=${o.format}` : '';
  const res = await client.request('GET', `v1/batches/${enc}/${o.errors ? 'errors' : 'output'}${q}`);
  if (!o.output || o.output === '-') {
    try {
      // Not ended: ending stdout shuts a socketpair down for every process that shares it (a
      // shell's next command would then fail with EPIPE).
      await pipeline(res, process.stdout, { end: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EPIPE') throw e; // `| head` closed the pipe: not an error
    }
    return 0;
  }
  // Written beside the target and renamed at the end: an interrupted download leaves no truncated FILE.
  const target = path.resolve(o.output);
  const part = `${target}.${process.pid}.part`;
  const counter = new LineCounter();
  try {
    await pipeline(res, counter, fs.createWriteStream(part));
    fs.renameSync(part, target);
  } catch (e) {
    fs.rmSync(part, { force: true });
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE'
        ? `the download of ${v.id} broke off (${code}); ${o.output} was not written`
        : `cannot write ${o.output}: ${code ?? (e as Error).message}`,
    );
  }
  // Rows, whatever the format: a CSV's header is no row, and Parquet says its count in its footer.
  const format = o.errors ? 'jsonl' : (o.format ?? 'jsonl');
  const rows = format === 'parquet' ? await parquetRows(target) : format === 'csv' ? Math.max(0, counter.lines - 1) : counter.lines;
  if (o.json) process.stdout.write(`${JSON.stringify({ id: v.id, file: o.output, format, rows, bytes: counter.bytes })}\n`);
  else process.stderr.write(`wrote ${rows} rows (${counter.bytes} bytes) to ${o.output}\n`);
  return 0;
}

/** The row count a Parquet file's footer declares. */
async function parquetRows(file: string): Promise<number> {
  const meta = await parquetMetadataAsync(await asyncBufferFromFile(file));
  return Number(meta.num_rows);
}

export async function cancel(client: Client, id: string, json = false): Promise<number> {
  const v = await client.json<BatchView>('POST', `v1/batches/${encodeURIComponent(id)}/cancel`);
  process.stdout.write(json ? `${JSON.stringify(v, null, 2)}\n` : `${v.id} ${v.status}\n`);
  return 0;
}

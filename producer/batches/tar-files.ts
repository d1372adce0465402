// A tar archive (ustar, pax or GNU; plain or gzipped) of files for a model with declared processing
// becomes, as it streams in, the JSONL every batch of files is: one row per regular file,
// {"id": "<path in the archive>", "<input>": {"b64": "..."}}, in the archive's order. Headers are
// read 512 bytes at a time and their checksums checked; a file's size is checked against the row
// limit before its bytes are kept (a larger one is one row naming it, its bytes skipped unread into
// memory); folders, links and other entries are skipped. Nothing is decoded here.
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { AppError, badRequest } from '../../core/errors.ts';
import { ROW_ERROR_KEY } from '../../core/processing/request.ts';

const BLOCK = 512;

/** Whether the body starts as a ustar/GNU tar header does ("ustar" at offset 257). */
export const isTar = (head: Buffer) => head.length >= 263 && head.toString('latin1', 257, 262) === 'ustar';
/** Whether the body is gzipped (taken as a .tar.gz). */
export const isGzip = (head: Buffer) => head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;

/** Reads exactly what is asked of a stream of chunks. */
class Reader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private total = 0;
  constructor(
    body: AsyncIterable<Buffer>,
    private readonly maxTotal: number,
  ) {
    this.it = body[Symbol.asyncIterator]();
  }
  /** n bytes, or fewer at the end of the stream. */
  async take(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      const r = await this.it.next();
      if (r.done) break;
      this.total += r.value.length;
      // A gzipped archive may say little and inflate to much: its content counts, not its bytes sent.
      if (this.total > this.maxTotal) throw new AppError('payload_too_large', `the tar archive holds more than MODELQ_MAX_UPLOAD_MB (${this.maxTotal} bytes)`);
      this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }
  /** Drops n bytes without keeping them; false when the stream ended first. */
  async skip(n: number): Promise<boolean> {
    while (n > 0) {
      const part = await this.take(Math.min(n, 1 << 20));
      if (!part.length) return false;
      n -= part.length;
    }
    return true;
  }
}

const text = (h: Buffer, at: number, len: number) => {
  const s = h.subarray(at, at + len);
  const end = s.indexOf(0);
  return s.toString('utf8', 0, end < 0 ? len : end);
};

function octal(h: Buffer, at: number, len: number, what: string): number {
  const s = text(h, at, len).trim();
  if (h[at]! & 0x80) throw badRequest(`the tar archive's ${what} is in base-256 (over 8 GB): not read`);
  if (!/^[0-7]*$/.test(s)) throw badRequest(`the tar archive's ${what} "${s.slice(0, 20)}" is not octal: the body is no tar archive`);
  return s ? parseInt(s, 8) : 0;
}

/** The path records of a pax extended header ("<len> path=<value>\n" ...). */
function paxPath(body: Buffer): string | undefined {
  let at = 0;
  let path: string | undefined;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number(body.toString('latin1', at, space));
    if (!Number.isInteger(len) || len <= 0 || at + len > body.length) break;
    const rec = body.toString('utf8', space + 1, at + len - 1);
    if (rec.startsWith('path=')) path = rec.slice(5);
    at += len;
  }
  return path;
}

/** The archive's files as JSONL rows feeding `input`; a file over `maxFileBytes` is a row naming it. */
export async function* tarAsJsonl(body: AsyncIterable<Buffer>, input: string, maxFileBytes: number, maxTotal: number, gzipped = false): AsyncGenerator<Buffer> {
  const source = gzipped ? Readable.from(body).pipe(createGunzip()) : body;
  const r = new Reader(source as AsyncIterable<Buffer>, maxTotal);
  let files = 0;
  let longName: string | undefined;
  try {
    for (;;) {
      const h = await r.take(BLOCK);
      if (h.length < BLOCK) throw badRequest('the tar archive is cut short (no end blocks)');
      if (h.every((b) => b === 0)) break; // the end
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
      if (sum !== octal(h, 148, 8, 'header checksum')) throw badRequest('a tar header checksum does not match: the body is no tar archive, or it is corrupt');
      const size = octal(h, 124, 12, 'entry size');
      const type = String.fromCharCode(h[156]!);
      const padded = Math.ceil(size / BLOCK) * BLOCK;
      if (type === 'x' || type === 'L') {
        // The next entry's path, from a pax header or a GNU long name (both small: bounded here).
        if (size > 1 << 20) throw badRequest(`a tar extended header of ${size} bytes is too large`);
        const data = await r.take(padded);
        if (data.length < padded) throw badRequest('the tar archive is cut short');
        longName = type === 'L' ? text(data, 0, size) : (paxPath(data.subarray(0, size)) ?? longName);
        continue;
      }
      const prefix = h.toString('latin1', 257, 262) === 'ustar' ? text(h, 345, 155) : '';
      const name = longName ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100));
      longName = undefined;
      const regular = type === '0' || type === '\0' || type === '7';
      const skipped = !regular || name.endsWith('/') || /(^|\/)\._[^/]*$|(^|\/)\.DS_Store$/.test(name);
      if (skipped || size > maxFileBytes) {
        if (!skipped) {
          files++;
          yield Buffer.from(`${JSON.stringify({ id: name, [ROW_ERROR_KEY]: `the file is over ${maxFileBytes} bytes (MODELQ_MAX_ROW_BYTES)` })}\n`);
        }
        if (!(await r.skip(padded))) throw badRequest('the tar archive is cut short');
        continue;
      }
      const data = await r.take(padded);
      if (data.length < padded) throw badRequest(`the tar archive is cut short in "${name.slice(0, 200)}"`);
      files++;
      yield Buffer.from(`{"id":${JSON.stringify(name)},${JSON.stringify(input)}:{"b64":"${data.subarray(0, size).toString('base64')}"}}\n`);
    }
  } catch (e) {
    if ((e as { code?: string }).code?.startsWith('Z_')) throw badRequest(`the gzipped tar archive does not inflate: ${(e as Error).message}`);
    throw e;
  }
  if (!files) throw badRequest('the tar archive has no files');
}

// Filesystem ArtifactStore: writes go to a temp file in the same directory, then rename(2),
// so readers never see a half-written object and a retried writer simply replaces it.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type ArtifactStore,
  type ByteRange,
  type ListedObject,
  type PutBody,
  type PutOptions,
  type PutResult,
  checkKey,
  TooLargeError,
} from './artifact-store.ts';

/** Buffers per writev(2) call (IOV_MAX is 1024 on Linux). */
const WRITEV_MAX = 1024;
/** Bytes per read of a stream of an object. */
const READ_BYTES = 1024 * 1024;

/** Writes every byte of `bufs` (a short writev goes on from where it stopped). */
async function writeAll(fh: fs.FileHandle, bufs: Uint8Array[]): Promise<void> {
  let rest = bufs.filter((b) => b.length > 0);
  while (rest.length) {
    let { bytesWritten: n } = await fh.writev(rest);
    if (n === 0) throw new Error('writev wrote nothing');
    let k = 0;
    while (k < rest.length && n >= rest[k]!.length) n -= rest[k++]!.length;
    rest = rest.slice(k);
    if (n > 0) rest[0] = rest[0]!.subarray(n);
  }
}

export class FsStore implements ArtifactStore {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }

  private file(key: string): string {
    return path.join(this.root, checkKey(key));
  }

  localPath(key: string): string {
    return this.file(key);
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    const dest = this.file(key);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomUUID()}.tmp`;
    const hash = createHash('sha256');
    let bytes = 0;
    const max = opts.maxBytes ?? Infinity;
    if (Array.isArray(body)) return this.putList(dest, tmp, body as readonly Uint8Array[], max, opts.sha256 !== false);
    const source = typeof body === 'string' || body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : (body as Readable | AsyncIterable<Uint8Array>);
    // The file is opened before the pipeline starts: a stream that opens lazily can create it after a
    // failed write was cleaned up, leaving a temp file behind.
    const out = (await fs.open(tmp, 'w')).createWriteStream();
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Uint8Array>) {
          for await (const c of chunks) {
            bytes += c.length;
            if (bytes > max) throw new TooLargeError(max);
            hash.update(c);
            yield c;
          }
        },
        out,
      );
      await fs.rename(tmp, dest);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
    return { bytes, sha256: hash.digest('hex') };
  }

  /** A list of buffers: hashed, then written with as few writev(2) calls as the iovec limit allows. */
  private async putList(dest: string, tmp: string, list: readonly Uint8Array[], max: number, hashed: boolean): Promise<PutResult> {
    let bytes = 0;
    for (const b of list) bytes += b.length;
    if (bytes > max) throw new TooLargeError(max);
    const hash = hashed ? createHash('sha256') : null;
    if (hash) for (const b of list) hash.update(b);
    const fh = await fs.open(tmp, 'w');
    try {
      try {
        for (let i = 0; i < list.length; i += WRITEV_MAX) await writeAll(fh, list.slice(i, i + WRITEV_MAX));
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, dest);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      throw e;
    }
    return { bytes, sha256: hash ? hash.digest('hex') : '' };
  }

  async get(key: string): Promise<Buffer> {
    return fs.readFile(this.file(key));
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.file(key);
    await fs.access(file); // fail here with ENOENT rather than on the stream's first read
    if (range && range.end <= range.start) return Readable.from([]);
    // 1 MiB reads: a batch chunk of tens of MiB is read in few calls, and handed on in few pieces.
    return createReadStream(file, { highWaterMark: READ_BYTES, ...(range ? { start: range.start, end: range.end - 1 } : {}) });
  }

  async stat(key: string): Promise<{ bytes: number } | null> {
    try {
      const s = await fs.stat(this.file(key));
      return { bytes: s.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  async move(from: string, to: string): Promise<void> {
    const dest = this.file(to);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    await fs.rename(this.file(from), dest);
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.file(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<void> {
    const p = prefix.replace(/\/+$/, '');
    await fs.rm(this.file(p), { recursive: true, force: true });
  }

  /** Walks the directory that holds the prefix's last segment; temp files of writes in progress are left out. */
  async list(prefix: string, limit: number): Promise<ListedObject[]> {
    const cut = prefix.lastIndexOf('/');
    const dir = cut < 0 ? '' : prefix.slice(0, cut);
    const base = dir ? this.file(dir) : this.root;
    let names: string[];
    try {
      names = (await fs.readdir(base, { recursive: true, withFileTypes: true }))
        .filter((e) => e.isFile() && !e.name.endsWith('.tmp'))
        .map((e) => path.relative(this.root, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw e;
    }
    const keys = names
      .filter((k) => k.startsWith(prefix))
      .sort()
      .slice(0, limit);
    return Promise.all(keys.map(async (key) => ({ key, bytes: (await fs.stat(this.file(key))).size })));
  }
}

// Filesystem ArtifactStore: writes go to a temp file in the same directory, then rename(2),
// so readers never see a half-written object and a retried writer simply replaces it.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type ArtifactStore, type ByteRange, type ListedObject, type PutResult, checkKey, TooLargeError } from './artifact-store.ts';

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

  async put(key: string, body: Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>, opts: { maxBytes?: number } = {}): Promise<PutResult> {
    const dest = this.file(key);
    await fs.mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomUUID()}.tmp`;
    const hash = createHash('sha256');
    let bytes = 0;
    const max = opts.maxBytes ?? Infinity;
    const source = typeof body === 'string' || body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
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

  async get(key: string): Promise<Buffer> {
    return fs.readFile(this.file(key));
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const file = this.file(key);
    await fs.access(file); // fail here with ENOENT rather than on the stream's first read
    if (range && range.end <= range.start) return Readable.from([]);
    return createReadStream(file, range ? { start: range.start, end: range.end - 1 } : {});
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

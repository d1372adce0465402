// Where a chunk's rows come from: the uploaded file in the artifact store, or (a batch by
// reference) its object, named by URI in the spec, read through the object stores. A by-reference
// object that is gone or unreadable fails the chunk naming it.
import fs from 'node:fs/promises';
import { AppError } from '../../core/errors.ts';
import { batchKeys, type BatchSpec, type ScoreJob } from '../../core/jobs/batch.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import { readFooter, type RowGroupBytes } from '../../core/rows/parquet.ts';

export interface ChunkInput {
  store: ArtifactStore;
  key: string;
  bytes: number;
  /** The chunk's bytes in `key` (an upload stored per chunk holds them from 0). */
  start: number;
  end: number;
  header?: string;
  /** By reference: the object's URI (for messages). */
  uri?: string;
}

/** Where a chunk's rows are read: the uploaded file, or (by reference) its object, with that object's header and size. */
export function inputOf(spec: BatchSpec, chunk: ScoreJob, deps: { store: ArtifactStore; objects?: ObjectStores }): ChunkInput {
  const header = spec.header !== undefined ? { header: spec.header } : {};
  // An upload stored as it arrived: the chunk is an object of its own.
  if (spec.inputParts) {
    const n = chunk.end - chunk.start;
    return { store: deps.store, key: batchKeys.inputPartOf(spec.inputKey, chunk.index), bytes: n, start: 0, end: n, ...header };
  }
  if (!spec.source) return { store: deps.store, key: spec.inputKey, bytes: spec.bytes, start: chunk.start, end: chunk.end, ...header };
  const f = spec.source.files[chunk.file ?? -1];
  if (!f) throw new AppError('internal', `chunk ${chunk.index} names file ${chunk.file}, which batch ${spec.id} does not have`);
  if (!deps.objects) throw new AppError('internal', 'this worker has no object stores for batches by reference');
  const { store, key } = deps.objects.resolve(f.uri);
  return { store, key, bytes: f.bytes, start: chunk.start, end: chunk.end, uri: f.uri, ...(f.header !== undefined ? { header: f.header } : {}) };
}

/** An object by reference that is gone or unreadable fails the chunk naming it (unrecoverable when it is gone). */
export async function* readable(source: AsyncIterable<unknown>, uri: string | undefined): AsyncGenerator<unknown> {
  try {
    yield* source;
  } catch (e) {
    if (!uri) throw e;
    const gone = (e as { code?: string }).code === 'ENOENT';
    throw new AppError(gone ? 'bad_request' : 'unavailable', `cannot read ${uri}: ${(e as Error).message}`);
  }
}

/**
 * Bytes [start, end) of a stored object, in a buffer of their own (so it moves to an engine thread
 * without a copy). A store on this machine's disk is read straight into it (one read, no stream
 * chunks joined: Buffer.concat of a row group's 64 KiB chunks was a third of a worker main
 * thread's time on Parquet); any other store's stream is copied in as it arrives. Shorter when the
 * object ends first.
 */
export async function readRange(store: ArtifactStore, key: string, start: number, end: number): Promise<Uint8Array> {
  const out = new Uint8Array(Math.max(0, end - start));
  let at = 0;
  const local = store.localPath(key);
  if (local) {
    const fh = await fs.open(local, 'r');
    try {
      while (at < out.length) {
        const { bytesRead } = await fh.read(out, at, out.length - at, start + at);
        if (!bytesRead) break;
        at += bytesRead;
      }
    } finally {
      await fh.close();
    }
  } else {
    for await (const b of await store.read(key, { start, end })) {
      const u = b as Uint8Array;
      if (at + u.length > out.length) throw new Error(`a read of bytes ${start}-${end} of ${key} brought more than ${out.length} bytes`);
      out.set(u, at);
      at += u.length;
    }
  }
  return at === out.length ? out : out.slice(0, at);
}

/**
 * A Parquet chunk's row group and the file's footer, read from where the chunk's input lives; a
 * by-reference object that cannot be read is an error naming its URI (400 when it is gone).
 */
export async function readRowGroup(input: ChunkInput, chunk: ScoreJob): Promise<RowGroupBytes> {
  const read = (s: number, e: number) =>
    readRange(input.store, input.key, s, e).catch((err: Error) => {
      if (!input.uri) throw err;
      throw new AppError((err as { code?: string }).code === 'ENOENT' ? 'bad_request' : 'unavailable', `cannot read ${input.uri}: ${err.message}`);
    });
  const footer = await readFooter(read, input.bytes);
  const bytes = await read(chunk.start, chunk.end);
  return { footer, bytes, start: chunk.start, fileBytes: input.bytes };
}

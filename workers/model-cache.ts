// Local model files for the engine, which loads ONNX from a path. The filesystem store hands out
// its own file; with an object store the model is downloaded once per machine into the cache
// directory under its sha256 (content-addressed, so never stale) and reused by every job, every
// engine thread and every worker process on the machine that shares the directory.
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../core/errors.ts';
import { modelArtifactKey } from '../core/registry.ts';
import type { ArtifactStore } from '../core/storage/index.ts';

/** MODELQ_CACHE_DIR's default. */
export const DEFAULT_CACHE_DIR = path.join(os.tmpdir(), 'modelq-cache');

const SHA256 = /^[0-9a-f]{64}$/;

/** Files known to be complete in this process: a hit costs no system call. */
const present = new Set<string>();
/** One download per file at a time, however many jobs ask at once. */
const inFlight = new Map<string, Promise<string>>();

/** A local path of the registered model with this sha256: the store's own file, or a cached download. */
export function localModelPath(store: ArtifactStore, sha256: string, cacheDir: string = DEFAULT_CACHE_DIR): Promise<string> {
  return localArtifactPath(store, modelArtifactKey(sha256), sha256, cacheDir);
}

/**
 * A local path of the object at `key`, whose content has this sha256 (an upload being checked,
 * or a model). Downloads verify the sha256, so what is cached under a digest is that content; the
 * cached file then also serves the model key once the upload is registered.
 */
export async function localArtifactPath(store: ArtifactStore, key: string, sha256: string, cacheDir: string = DEFAULT_CACHE_DIR): Promise<string> {
  const local = store.localPath(key);
  if (local) return local;
  if (!SHA256.test(sha256)) throw new AppError('bad_request', `"${sha256.slice(0, 80)}" is not a sha256 hex digest`);
  const file = path.join(path.resolve(cacheDir), `${sha256}.onnx`);
  if (present.has(file)) return file;
  let p = inFlight.get(file);
  if (!p) {
    p = fetchOnce(store, key, sha256, file).finally(() => inFlight.delete(file));
    inFlight.set(file, p);
  }
  return p;
}

async function fetchOnce(store: ArtifactStore, key: string, sha256: string, file: string): Promise<string> {
  if (
    await fs.stat(file).then(
      (s) => s.isFile(),
      () => false,
    )
  ) {
    present.add(file); // complete by construction: only renamed into place after its digest matched
    return file;
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  // Temp file + rename: another process (or a crash) never sees half a model under the final name.
  const tmp = `${file}.${randomUUID()}.tmp`;
  const hash = createHash('sha256');
  try {
    let source;
    try {
      source = await store.read(key);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('not_found', `model file ${key} is not in the artifact store`);
      throw e; // transient store trouble: the job is retried
    }
    await pipeline(
      source,
      new Transform({
        transform(c: Buffer, _enc, cb) {
          hash.update(c);
          cb(null, c);
        },
      }),
      createWriteStream(tmp),
    );
    const got = hash.digest('hex');
    if (got !== sha256) throw new AppError('internal', `${key} in the artifact store has sha256 ${got}, expected ${sha256}`);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  present.add(file);
  return file;
}

// Local model files for the engine, which loads ONNX from a path. The filesystem store hands out
// its own file; with an object store the model is downloaded once per machine into the cache
// directory under its sha256 (content-addressed, so never stale) and reused by every job, every
// engine thread and every worker process on the machine that shares the directory.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError } from '../core/errors.ts';
import { type DigestSignature, modelArtifactKey } from '../core/registry.ts';
import { verifyDigest } from '../core/signing.ts';
import type { ArtifactStore } from '../core/storage/index.ts';

/** MODELQ_CACHE_DIR's default. */
export const DEFAULT_CACHE_DIR = path.join(os.tmpdir(), 'modelq-cache');

const SHA256 = /^[0-9a-f]{64}$/;

/** Files known to be complete in this process: a hit costs no system call. */
const present = new Set<string>();
/** One download per file at a time, however many jobs ask at once. */
const inFlight = new Map<string, Promise<string>>();

/** Who signed a model digest (the registry's record), or null for a digest no version was signed with. */
export type SignatureLookup = (sha256: string) => Promise<DigestSignature | null>;
let signatures: SignatureLookup | undefined;
/** Digests whose file this process has hashed and whose signature it has checked: later calls cost nothing. */
const verified = new Set<string>();
/** Digests found unsigned, until when (ms): a version registered moments later is then checked. */
const unsigned = new Map<string, number>();
const UNSIGNED_RECHECK_MS = 10_000;
const verifying = new Map<string, Promise<void>>();

/**
 * Makes every model this process loads pass a check first: the file's sha256 must be the signed
 * digest and the platform's signature of it must verify (core/signing.ts). Workers set it at start;
 * a digest without a signature (a version from before signing, or not registered yet) loads as before.
 */
export function verifyModelsWith(lookup: SignatureLookup | undefined): void {
  signatures = lookup;
  verified.clear();
  unsigned.clear();
}

/** A local path of the registered model with this sha256 (the store's own file, or a cached download), checked against its signature. */
export async function localModelPath(store: ArtifactStore, sha256: string, cacheDir: string = DEFAULT_CACHE_DIR): Promise<string> {
  const file = await localArtifactPath(store, modelArtifactKey(sha256), sha256, cacheDir).catch(async (e: unknown) => {
    // A download whose bytes are not the digest: name the version when one was signed with it.
    const s = e instanceof AppError && e.code === 'invalid_model' ? await signatures?.(sha256) : null;
    throw s ? new AppError('invalid_model', `model ${s.name}@${s.version}: ${e instanceof Error ? e.message : String(e)}; refusing to load it`) : e;
  });
  if (signatures && !verified.has(sha256)) {
    let p = verifying.get(sha256);
    if (!p) {
      p = checkSigned(file, sha256, signatures).finally(() => verifying.delete(sha256));
      verifying.set(sha256, p);
    }
    await p;
  }
  return file;
}

async function checkSigned(file: string, sha256: string, lookup: SignatureLookup): Promise<void> {
  if ((unsigned.get(sha256) ?? 0) > Date.now()) return;
  const s = await lookup(sha256);
  if (!s) {
    unsigned.set(sha256, Date.now() + UNSIGNED_RECHECK_MS);
    return;
  }
  const label = `model ${s.name}@${s.version}`;
  if (!verifyDigest(sha256, s.signature.value, s.signature.publicKey))
    throw new AppError('invalid_model', `${label}: the signature of its digest does not verify (key ${s.signature.keyId}); refusing to load it`);
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  const got = hash.digest('hex');
  if (got !== sha256)
    throw new AppError('invalid_model', `${label}: the stored file was altered (sha256 ${got}, signed digest ${sha256}); refusing to load it`);
  verified.add(sha256);
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
    if (got !== sha256) throw new AppError('invalid_model', `${key} in the artifact store has sha256 ${got}, expected ${sha256}`);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  present.add(file);
  return file;
}

/**
 * Forgets a model whose versions were all erased: its cached download is removed from the cache
 * directory and this process no longer counts it as present or verified (a later load, if the bytes
 * came back, checks them again).
 */
export async function forgetModel(sha256: string, cacheDir: string = DEFAULT_CACHE_DIR): Promise<boolean> {
  if (!SHA256.test(sha256)) return false;
  const file = path.join(path.resolve(cacheDir), `${sha256}.onnx`);
  present.delete(file);
  verified.delete(sha256);
  unsigned.delete(sha256);
  const existed = await fs.stat(file).then(
    () => true,
    () => false,
  );
  await fs.rm(file, { force: true });
  return existed;
}

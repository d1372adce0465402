// Where inputs, outputs and models live (never in Redis). Keys are relative paths like
// "models/sha256/<hex>.onnx"; every write replaces the whole object atomically.
import type { Readable } from 'node:stream';

export interface PutResult {
  bytes: number;
  sha256: string;
}
export interface ByteRange {
  start: number;
  end: number;
} // inclusive start, exclusive end

/**
 * What put() takes. A list of buffers is the object's bytes in order, written without joining them
 * (a file store writes them with writev(2)): an upload's chunk is views of the request's buffers.
 */
export type PutBody = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array> | readonly Uint8Array[];

export interface PutOptions {
  maxBytes?: number;
  /** false: the caller has no use for the object's sha256, and a store may skip hashing it (the result's sha256 is then ''). */
  sha256?: false;
}

export interface ArtifactStore {
  /** Streams `body` to `key`, replacing any previous object only once the write is complete. */
  put(key: string, body: PutBody, opts?: PutOptions): Promise<PutResult>;
  get(key: string): Promise<Buffer>;
  /** A stream of the object, or of a byte range of it. */
  read(key: string, range?: ByteRange): Promise<Readable>;
  /** null when absent. */
  stat(key: string): Promise<{ bytes: number } | null>;
  /** Atomically renames; replaces `to` if present. */
  move(from: string, to: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Deletes every key under a prefix ("batches/abc/"). */
  deletePrefix(prefix: string): Promise<void>;
  /** A local file path for the key, when the store is on this machine's disk (engine threads load from it). */
  localPath(key: string): string | undefined;
  /**
   * Objects whose keys start with `prefix` (a plain string prefix, "a/b" matches "a/bc"), in key
   * order, at most `limit` of them (batches by reference list their input this way).
   */
  list(prefix: string, limit: number): Promise<ListedObject[]>;
}

export interface ListedObject {
  key: string;
  bytes: number;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Rejects keys that could escape the store root. */
export function checkKey(key: string): string {
  const parts = key.split('/');
  if (!key || parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..')) {
    throw new Error(`invalid artifact key "${key}"`);
  }
  return key;
}

export class TooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`body exceeds the limit of ${maxBytes} bytes`);
  }
}

/** A read of a key that does not exist; `code` matches the filesystem store's ENOENT. */
export class ArtifactNotFoundError extends Error {
  readonly code = 'ENOENT';
  constructor(readonly key: string) {
    super(`artifact ${key} does not exist`);
  }
}

// Encryption at rest around any ArtifactStore (filesystem or S3): each object gets its own random
// AES-256 data key; the body is AES-256-GCM in fixed 64 KiB segments (each with its own nonce and
// tag, its index bound in as associated data), so a byte range maps to whole segments and ranged
// reads stay ranged. The data key, wrapped by a master key, lives in a small sidecar object
// `<key>.mqdek` with the master key's id: rotation rewraps sidecars and never rewrites bodies.
// Objects without a sidecar (written before encryption was turned on) are read as they are.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { type ArtifactStore, type ByteRange, type ListedObject, type PutBody, type PutOptions, type PutResult, TooLargeError } from './artifact-store.ts';

/** Plaintext bytes per segment. */
export const SEGMENT_BYTES = 64 * 1024;
const NONCE = 12;
const TAG = 16;
const OVERHEAD = NONCE + TAG;
const SEALED = SEGMENT_BYTES + OVERHEAD;
export const SIDECAR_SUFFIX = '.mqdek';
export const sidecarKey = (key: string) => `${key}${SIDECAR_SUFFIX}`;
const isSidecar = (key: string) => key.endsWith(SIDECAR_SUFFIX);

/** Ciphertext size of `plain` bytes, and back. */
const sealedSize = (plain: number) => plain + OVERHEAD * Math.ceil(plain / SEGMENT_BYTES);
const plainSize = (sealed: number) => sealed - OVERHEAD * Math.ceil(sealed / SEALED);

export interface MasterKey {
  /** First 16 hex digits of the sha256 of the key: recorded with every wrapped data key. */
  id: string;
  key: Buffer;
}

/** The first key wraps new data keys; the others still unwrap (keys being rotated out). */
export class MasterKeys {
  readonly current: MasterKey;
  private readonly byId: Map<string, MasterKey>;
  constructor(keys: MasterKey[]) {
    if (!keys.length) throw new Error('no master key');
    this.current = keys[0]!;
    this.byId = new Map(keys.map((k) => [k.id, k]));
  }
  get(id: string): MasterKey | undefined {
    return this.byId.get(id);
  }

  /** Base64 32-byte keys; `source` names the setting in errors. */
  static parse(list: string[], source: string): MasterKeys {
    return new MasterKeys(
      list.map((s, i) => {
        const key = Buffer.from(s, 'base64');
        if (key.length !== 32 || !/^[A-Za-z0-9+/]+=*$/.test(s)) throw new Error(`${source}: key ${i + 1} is not 32 bytes in base64 (openssl rand -base64 32)`);
        return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
      }),
    );
  }
}

/** MODELQ_MASTER_KEY or MODELQ_MASTER_KEY_FILE; null when neither is set (encryption off). */
export function masterKeysFrom(cfg: { MODELQ_MASTER_KEY?: string; MODELQ_MASTER_KEY_FILE?: string }): MasterKeys | null {
  let raw = cfg.MODELQ_MASTER_KEY ?? '';
  let source = 'MODELQ_MASTER_KEY';
  if (!raw && cfg.MODELQ_MASTER_KEY_FILE) {
    source = 'MODELQ_MASTER_KEY_FILE';
    try {
      raw = fs.readFileSync(cfg.MODELQ_MASTER_KEY_FILE, 'utf8');
    } catch (e) {
      throw new Error(`MODELQ_MASTER_KEY_FILE: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const list = raw
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
  return list.length ? MasterKeys.parse(list, source) : null;
}

const sidecarSchema = z.object({
  v: z.literal(1),
  alg: z.literal('AES-256-GCM'),
  seg: z.literal(SEGMENT_BYTES),
  /** Plaintext bytes of the object. */
  bytes: z.number().int().min(0),
  /** Id of the master key that wrapped `dek`. */
  kid: z.string(),
  /** base64 nonce | wrapped data key | tag. */
  dek: z.string(),
});
type Sidecar = z.infer<typeof sidecarSchema>;

function seal(key: Buffer, plain: Buffer, aad: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, body, c.getAuthTag()]);
}

function open(key: Buffer, sealed: Buffer, aad: Buffer, what: string): Buffer {
  if (sealed.length < OVERHEAD) throw new Error(`${what}: encrypted segment is truncated`);
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  try {
    return Buffer.concat([d.update(sealed.subarray(NONCE, sealed.length - TAG)), d.final()]);
  } catch {
    throw new Error(`${what}: decryption failed (the object or its key was altered, or replaced while being read)`);
  }
}

const segmentAad = (i: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(i));
  return b;
};
const WRAP_AAD = Buffer.from('modelq-dek-v1');

export class EncryptedStore implements ArtifactStore {
  constructor(
    readonly inner: ArtifactStore,
    private readonly keys: MasterKeys,
  ) {}

  /** Models are decrypted into the worker's cache directory (workers/model-cache.ts), never read in place. */
  localPath(_key: string): undefined {
    return undefined;
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    const dek = randomBytes(32);
    const hash = createHash('sha256');
    const max = opts.maxBytes ?? Infinity;
    let bytes = 0;
    const source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> = typeof body === 'string' || body instanceof Uint8Array ? [Buffer.from(body)] : body;
    async function* sealed() {
      let carry: Buffer = Buffer.alloc(0);
      let index = 0;
      for await (const c of source) {
        bytes += c.length;
        if (bytes > max) throw new TooLargeError(max);
        hash.update(c);
        const buf = carry.length ? Buffer.concat([carry, c]) : Buffer.from(c.buffer, c.byteOffset, c.byteLength);
        let off = 0;
        for (; buf.length - off >= SEGMENT_BYTES; off += SEGMENT_BYTES) yield seal(dek, buf.subarray(off, off + SEGMENT_BYTES), segmentAad(index++));
        carry = Buffer.from(buf.subarray(off));
      }
      if (carry.length) yield seal(dek, carry, segmentAad(index++));
    }
    await this.inner.put(key, sealed());
    const side: Sidecar = { v: 1, alg: 'AES-256-GCM', seg: SEGMENT_BYTES, bytes, kid: this.keys.current.id, dek: this.wrap(dek) };
    try {
      await this.inner.put(sidecarKey(key), JSON.stringify(side));
    } catch (e) {
      // A body without its key would read as the ciphertext itself: take the body away too.
      await this.inner.delete(key).catch(() => {});
      throw e;
    }
    return { bytes, sha256: hash.digest('hex') };
  }

  private wrap(dek: Buffer): string {
    return seal(this.keys.current.key, dek, WRAP_AAD).toString('base64');
  }

  private unwrap(s: Sidecar, key: string): Buffer {
    const mk = this.keys.get(s.kid);
    if (!mk) throw new Error(`${key}: its data key is wrapped by master key ${s.kid}, which is not configured`);
    return open(mk.key, Buffer.from(s.dek, 'base64'), WRAP_AAD, key);
  }

  /** The object's sidecar, or null for an object stored in plaintext. */
  private async sidecar(key: string): Promise<Sidecar | null> {
    let raw: Buffer;
    try {
      raw = await this.inner.get(sidecarKey(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const r = sidecarSchema.safeParse(JSON.parse(raw.toString('utf8')));
    if (!r.success) throw new Error(`${key}: its encryption sidecar is not readable`);
    return r.data;
  }

  async get(key: string): Promise<Buffer> {
    const side = await this.sidecar(key);
    const body = await this.inner.get(key);
    if (!side) return body;
    if (body.length !== sealedSize(side.bytes)) throw new Error(`${key}: encrypted object has ${body.length} bytes, expected ${sealedSize(side.bytes)}`);
    const dek = this.unwrap(side, key);
    const out = Buffer.allocUnsafe(side.bytes);
    for (let i = 0, off = 0; off < body.length; i++, off += SEALED)
      open(dek, body.subarray(off, off + SEALED), segmentAad(i), key).copy(out, i * SEGMENT_BYTES);
    return out;
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const side = await this.sidecar(key);
    if (!side) return this.inner.read(key, range);
    const total = side.bytes;
    const start = Math.min(Math.max(0, range?.start ?? 0), total);
    const end = Math.min(range?.end ?? total, total);
    if (end <= start) {
      if (!(await this.inner.stat(key))) return this.inner.read(key); // the missing object's own error
      return Readable.from([]);
    }
    const dek = this.unwrap(side, key);
    const first = Math.floor(start / SEGMENT_BYTES);
    const last = Math.floor((end - 1) / SEGMENT_BYTES);
    const src = await this.inner.read(key, { start: first * SEALED, end: Math.min(sealedSize(total), (last + 1) * SEALED) });
    return Readable.from(openSegments(src, dek, first, start - first * SEGMENT_BYTES, end - start, key), { objectMode: false });
  }

  async stat(key: string): Promise<{ bytes: number } | null> {
    const [body, side] = await Promise.all([this.inner.stat(key), this.inner.stat(sidecarKey(key))]);
    if (!body) return null;
    return side ? { bytes: plainSize(body.bytes) } : body;
  }

  async move(from: string, to: string): Promise<void> {
    const side = await this.inner.stat(sidecarKey(from));
    // The sidecar first: a body at `to` is never paired with another object's key longer than the two moves.
    if (side) await this.inner.move(sidecarKey(from), sidecarKey(to));
    else await this.inner.delete(sidecarKey(to));
    await this.inner.move(from, to);
  }

  async delete(key: string): Promise<void> {
    await this.inner.delete(key);
    await this.inner.delete(sidecarKey(key));
  }

  async deletePrefix(prefix: string): Promise<void> {
    await this.inner.deletePrefix(prefix);
    await this.inner.delete(sidecarKey(prefix.replace(/\/+$/, '')));
  }

  async list(prefix: string, limit: number): Promise<ListedObject[]> {
    // Each encrypted object has a sidecar beside it: twice as many entries cover `limit` objects.
    const all = await this.inner.list(prefix, limit * 2);
    const sidecars = new Set(all.filter((o) => isSidecar(o.key)).map((o) => o.key));
    return all
      .filter((o) => !isSidecar(o.key))
      .map((o) => (sidecars.has(sidecarKey(o.key)) ? { key: o.key, bytes: plainSize(o.bytes) } : o))
      .slice(0, limit);
  }

  /**
   * Rewraps every data key not wrapped by the current master key (`modelq rotate-key`): only the
   * sidecars are rewritten, never an object's body. Returns how many were rewrapped and kept.
   */
  async rotate(prefix = '', limit = Number.MAX_SAFE_INTEGER): Promise<{ rewrapped: number; current: number }> {
    let rewrapped = 0;
    let current = 0;
    for (const o of await this.inner.list(prefix, limit)) {
      if (!isSidecar(o.key)) continue;
      const key = o.key.slice(0, -SIDECAR_SUFFIX.length);
      const side = await this.sidecar(key);
      if (!side) continue;
      if (side.kid === this.keys.current.id) {
        current++;
        continue;
      }
      const dek = this.unwrap(side, key);
      await this.inner.put(o.key, JSON.stringify({ ...side, kid: this.keys.current.id, dek: this.wrap(dek) }));
      rewrapped++;
    }
    return { rewrapped, current };
  }
}

/** Decrypts sealed segments from `src` (starting at segment `index`) and yields `length` plaintext bytes after skipping `skip`. */
async function* openSegments(src: Readable, dek: Buffer, index: number, skip: number, length: number, key: string): AsyncGenerator<Buffer> {
  let carry: Buffer = Buffer.alloc(0);
  let left = length;
  const emit = (plain: Buffer): Buffer | null => {
    const part = plain.subarray(skip, skip + left);
    skip = Math.max(0, skip - plain.length);
    left -= part.length;
    return part.length ? part : null;
  };
  for await (const c of src as AsyncIterable<Buffer>) {
    carry = carry.length ? Buffer.concat([carry, c]) : c;
    let off = 0;
    for (; carry.length - off >= SEALED && left > 0; off += SEALED) {
      const out = emit(open(dek, carry.subarray(off, off + SEALED), segmentAad(index++), key));
      if (out) yield out;
    }
    carry = carry.subarray(off);
    if (left <= 0) {
      src.destroy();
      return;
    }
  }
  if (carry.length && left > 0) {
    const out = emit(open(dek, carry, segmentAad(index++), key));
    if (out) yield out;
  }
  if (left > 0) throw new Error(`${key}: encrypted object ended ${left} bytes early`);
}

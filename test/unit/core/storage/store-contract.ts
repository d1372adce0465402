// The ArtifactStore contract, run against every implementation (fs-store.test.ts, s3-store.test.ts):
// what the producer and the workers rely on, whichever store is configured.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { type ArtifactStore, TooLargeError } from '../../../../core/storage/index.ts';

export interface StoreUnderTest {
  store: ArtifactStore;
  cleanup(): Promise<void>;
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** A deterministic pseudo-random body of `n` bytes, streamed in pieces of `piece` bytes. */
function bigBody(n: number, piece = 256 * 1024): { bytes: Buffer; stream: () => Readable } {
  const bytes = Buffer.alloc(n);
  let s = 7;
  for (let i = 0; i < n; i++) bytes[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  return {
    bytes,
    stream: () =>
      Readable.from(
        (function* () {
          for (let i = 0; i < n; i += piece) yield bytes.subarray(i, Math.min(n, i + piece));
        })(),
      ),
  };
}

export function storeContract(name: string, make: () => Promise<StoreUnderTest>): void {
  const withStore = (fn: (s: ArtifactStore) => Promise<void>) => async () => {
    const t = await make();
    try {
      await fn(t.store);
    } finally {
      await t.cleanup();
    }
  };

  describe(`${name}: ArtifactStore contract`, () => {
    it(
      'streams a put, reports size and sha256, reads whole and by range, stats',
      withStore(async (s) => {
        const r = await s.put('a/b.txt', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
        expect(r).toEqual({ bytes: 11, sha256: 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9' });
        expect((await s.get('a/b.txt')).toString()).toBe('hello world');
        expect(await text(await s.read('a/b.txt'))).toBe('hello world');
        expect(await text(await s.read('a/b.txt', { start: 6, end: 11 }))).toBe('world');
        expect(await text(await s.read('a/b.txt', { start: 0, end: 1 }))).toBe('h');
        expect(await text(await s.read('a/b.txt', { start: 3, end: 3 }))).toBe('');
        expect(await s.stat('a/b.txt')).toEqual({ bytes: 11 });
        expect(await s.stat('a/none')).toBeNull();
      }),
    );

    it(
      'puts a list of buffers (views, empty ones, more than one writev holds) as their bytes in order; sha256: false may skip the hash',
      withStore(async (s) => {
        const { bytes } = bigBody(300_000);
        // 1,500 views of 200 bytes with empty ones among them: more than one writev(2) call's 1,024 buffers.
        const list: Uint8Array[] = [];
        for (let i = 0; i < bytes.length; i += 200) list.push(bytes.subarray(i, i + 200), bytes.subarray(i, i));
        expect(await s.put('l/a', list)).toEqual({ bytes: bytes.length, sha256: sha(bytes) });
        expect((await s.get('l/a')).equals(bytes)).toBe(true);
        const r = await s.put('l/b', list.slice(0, 10), { sha256: false });
        expect(r.bytes).toBe(1000);
        expect([sha(bytes.subarray(0, 1000)), '']).toContain(r.sha256);
        expect((await s.get('l/b')).equals(bytes.subarray(0, 1000))).toBe(true);
        await expect(s.put('l/c', list, { maxBytes: 1000 })).rejects.toBeInstanceOf(TooLargeError);
        expect(await s.stat('l/c')).toBeNull();
      }),
    );

    it(
      'lists the objects under a string prefix in key order, with sizes, up to a limit',
      withStore(async (s) => {
        for (const k of ['d/x/2.txt', 'd/x/1.txt', 'd/x/sub/3.txt', 'd/xy.txt', 'e/4.txt']) await s.put(k, k);
        expect(await s.list('d/x/', 100)).toEqual([
          { key: 'd/x/1.txt', bytes: 9 },
          { key: 'd/x/2.txt', bytes: 9 },
          { key: 'd/x/sub/3.txt', bytes: 13 },
        ]);
        expect((await s.list('d/x', 100)).map((o) => o.key)).toEqual(['d/x/1.txt', 'd/x/2.txt', 'd/x/sub/3.txt', 'd/xy.txt']);
        expect((await s.list('d/x/', 2)).map((o) => o.key)).toEqual(['d/x/1.txt', 'd/x/2.txt']);
        expect(await s.list('nothing/', 10)).toEqual([]);
      }),
    );

    it(
      'puts strings, Buffers, Uint8Array views and async iterables alike',
      withStore(async (s) => {
        expect(await s.put('s', 'abc')).toEqual({ bytes: 3, sha256: sha('abc') });
        expect(await s.put('b', Buffer.from('abcd'))).toEqual({ bytes: 4, sha256: sha('abcd') });
        const view = new Uint8Array(Buffer.from('xxabcyy')).subarray(2, 5);
        expect(await s.put('u', view)).toEqual({ bytes: 3, sha256: sha('abc') });
        expect((await s.get('u')).toString()).toBe('abc');
        expect(
          await s.put(
            'i',
            (async function* () {
              yield Buffer.from('a');
              yield new Uint8Array([98]);
            })(),
          ),
        ).toEqual({ bytes: 2, sha256: sha('ab') });
        expect(await s.put('empty', '')).toEqual({ bytes: 0, sha256: sha('') });
        expect(await s.stat('empty')).toEqual({ bytes: 0 });
        expect((await s.get('empty')).length).toBe(0);
      }),
    );

    it(
      'streams a body larger than one multipart part, and reads a range across parts',
      withStore(async (s) => {
        const { bytes, stream } = bigBody(11 * 1024 * 1024 + 123);
        const r = await s.put('big/input.jsonl', stream());
        expect(r).toEqual({ bytes: bytes.length, sha256: sha(bytes) });
        expect(await s.stat('big/input.jsonl')).toEqual({ bytes: bytes.length });
        const start = 5 * 1024 * 1024 - 10;
        const end = 5 * 1024 * 1024 + 20;
        const part = Buffer.concat(await (await s.read('big/input.jsonl', { start, end })).toArray());
        expect(part.equals(bytes.subarray(start, end))).toBe(true);
      }),
    );

    it(
      'replaces atomically: a failed or too large write leaves the old object',
      withStore(async (s) => {
        await s.put('k', 'old');
        const failing = Readable.from(
          (async function* () {
            yield Buffer.from('new');
            throw new Error('client went away');
          })(),
        );
        await expect(s.put('k', failing)).rejects.toThrow('client went away');
        expect((await s.get('k')).toString()).toBe('old');
        await expect(s.put('k', 'x'.repeat(100), { maxBytes: 10 })).rejects.toBeInstanceOf(TooLargeError);
        const { stream } = bigBody(6 * 1024 * 1024, 64 * 1024);
        await expect(s.put('k', stream(), { maxBytes: 5 * 1024 * 1024 + 1 })).rejects.toBeInstanceOf(TooLargeError);
        expect((await s.get('k')).toString()).toBe('old');
        expect(await s.put('k', 'new')).toMatchObject({ bytes: 3 });
        expect((await s.get('k')).toString()).toBe('new');
        // exactly at the limit is fine
        expect(await s.put('k', Readable.from([Buffer.from('0123456789')]), { maxBytes: 10 })).toMatchObject({ bytes: 10 });
      }),
    );

    it(
      'moves (replacing the target), deletes, and deletes a prefix without touching its neighbours',
      withStore(async (s) => {
        await s.put('uploads/x.onnx', 'model');
        await s.put('models/m.onnx', 'older');
        await s.move('uploads/x.onnx', 'models/m.onnx');
        expect(await s.stat('uploads/x.onnx')).toBeNull();
        expect((await s.get('models/m.onnx')).toString()).toBe('model');
        await s.delete('models/m.onnx');
        await s.delete('models/m.onnx'); // deleting twice is fine (processors run twice)
        expect(await s.stat('models/m.onnx')).toBeNull();

        for (const k of ['batches/b1/input', 'batches/b1/out/0', 'batches/b1/out/1', 'batches/b10/input', 'batches/b2/input']) await s.put(k, k);
        await s.deletePrefix('batches/b1/');
        for (const k of ['batches/b1/input', 'batches/b1/out/0', 'batches/b1/out/1']) expect(await s.stat(k), k).toBeNull();
        expect(await s.stat('batches/b10/input')).not.toBeNull();
        expect(await s.stat('batches/b2/input')).not.toBeNull();
        await s.deletePrefix('batches/none'); // nothing there: no error
      }),
    );

    it(
      'fails reads of a missing key with code ENOENT',
      withStore(async (s) => {
        await expect(s.get('nope')).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(s.read('nope')).rejects.toMatchObject({ code: 'ENOENT' });
        await expect(s.read('nope', { start: 0, end: 0 })).rejects.toMatchObject({ code: 'ENOENT' });
      }),
    );

    it(
      'refuses keys that could escape the store',
      withStore(async (s) => {
        for (const k of ['../x', 'a/../../x', '/abs', 'a//b', '']) await expect(s.put(k, 'x')).rejects.toThrow(/invalid artifact key/);
      }),
    );
  });
}

// Encryption at rest: the store contract holds through the encryption layer; the raw files hold no
// plaintext; ranged reads across segment edges return the plaintext's bytes; rotation rewraps the
// sidecars only (bodies byte-identical) and everything stays readable; a flipped byte fails the read.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { EncryptedStore, MasterKeys, SEGMENT_BYTES, sidecarKey } from '../../../../core/storage/encrypted-store.ts';
import { createStore, FsStore } from '../../../../core/storage/index.ts';
import { tmpDir } from '../../../fixtures/models.ts';
import { storeContract } from './store-contract.ts';

const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');

storeContract('EncryptedStore(FsStore)', async () => {
  const dir = tmpDir('store');
  return { store: new EncryptedStore(new FsStore(dir), MasterKeys.parse([k1], 'test')), cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

let root: string;
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

/** Every file under `dir`, whole. */
const rawFiles = (dir: string): Buffer[] =>
  fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => fs.readFileSync(path.join(e.parentPath, e.name)));

describe('EncryptedStore', () => {
  it('stores no plaintext, reads back whole and by ranges across segment edges, streamed or not', async () => {
    root = tmpDir('enc');
    const s = createStore({ MODELQ_DATA_DIR: root, MODELQ_MASTER_KEY: k1 });
    expect(s).toBeInstanceOf(EncryptedStore);
    const rows = Array.from({ length: 6000 }, (_, i) => `{"email":"person${i}@example.org","x":[${i},${i * 2}]}\n`).join('');
    const plain = Buffer.from(rows);
    expect(plain.length).toBeGreaterThan(3 * SEGMENT_BYTES);
    const put = await s.put('datasets/d1/rows.jsonl', Readable.from([plain.subarray(0, 1000), plain.subarray(1000, 200_000), plain.subarray(200_000)]));
    expect(put.bytes).toBe(plain.length);
    for (const raw of rawFiles(root)) {
      expect(raw.includes('person4242@example.org')).toBe(false);
      expect(raw.includes('"email"')).toBe(false);
    }
    expect((await s.get('datasets/d1/rows.jsonl')).equals(plain)).toBe(true);
    expect(await s.stat('datasets/d1/rows.jsonl')).toEqual({ bytes: plain.length });
    expect(await s.list('datasets/', 10)).toEqual([{ key: 'datasets/d1/rows.jsonl', bytes: plain.length }]);
    for (const [a, b] of [
      [0, 10],
      [SEGMENT_BYTES - 5, SEGMENT_BYTES + 5],
      [SEGMENT_BYTES, 2 * SEGMENT_BYTES],
      [12345, plain.length],
      [plain.length - 3, plain.length + 100],
      [3 * SEGMENT_BYTES + 1, 3 * SEGMENT_BYTES + 2],
    ] as const) {
      const got = await buffer(await s.read('datasets/d1/rows.jsonl', { start: a, end: b }));
      expect(got.equals(plain.subarray(a, b)), `range ${a}-${b}`).toBe(true);
    }
  });

  it('rotation rewraps data keys without rewriting bodies; old objects stay readable, a flipped byte fails', async () => {
    root = tmpDir('enc');
    const inner = new FsStore(root);
    const before = new EncryptedStore(inner, MasterKeys.parse([k1], 'test'));
    const a = randomBytes(150_000);
    await before.put('models/a.onnx', a);
    await before.put('b/c.txt', 'hello');
    await inner.put('legacy.txt', 'written before encryption');
    const bodyBefore = fs.readFileSync(path.join(root, 'models/a.onnx'));
    const sideBefore = fs.readFileSync(path.join(root, sidecarKey('models/a.onnx')), 'utf8');

    const after = new EncryptedStore(inner, MasterKeys.parse([k2, k1], 'test'));
    expect(await after.rotate()).toEqual({ rewrapped: 2, current: 0 });
    expect(await after.rotate()).toEqual({ rewrapped: 0, current: 2 });
    expect(fs.readFileSync(path.join(root, 'models/a.onnx')).equals(bodyBefore)).toBe(true);
    expect(fs.readFileSync(path.join(root, sidecarKey('models/a.onnx')), 'utf8')).not.toBe(sideBefore);

    // Only the new key now: everything still reads.
    const only = new EncryptedStore(inner, MasterKeys.parse([k2], 'test'));
    expect((await only.get('models/a.onnx')).equals(a)).toBe(true);
    expect((await buffer(await only.read('models/a.onnx', { start: 70_000, end: 140_000 }))).equals(a.subarray(70_000, 140_000))).toBe(true);
    expect((await only.get('b/c.txt')).toString()).toBe('hello');
    expect((await only.get('legacy.txt')).toString()).toBe('written before encryption');
    // The old key alone no longer unwraps.
    await expect(before.get('models/a.onnx')).rejects.toThrow(/not configured/);

    const raw = fs.readFileSync(path.join(root, 'models/a.onnx'));
    raw[80_000] = raw[80_000]! ^ 1;
    fs.writeFileSync(path.join(root, 'models/a.onnx'), raw);
    await expect(only.get('models/a.onnx')).rejects.toThrow(/decryption failed/);
    await expect(buffer(await only.read('models/a.onnx', { start: 70_000, end: 71_000 }))).rejects.toThrow(/decryption failed/);
    // Segments the flip did not touch still read.
    expect((await buffer(await only.read('models/a.onnx', { start: 0, end: 1000 }))).equals(a.subarray(0, 1000))).toBe(true);
  });

  it('refuses a master key that is not 32 bytes, naming the setting', () => {
    expect(() => createStore({ MODELQ_DATA_DIR: tmpDir('enc'), MODELQ_MASTER_KEY: 'c2hvcnQ=' })).toThrow(/MODELQ_MASTER_KEY: key 1 is not 32 bytes/);
  });
});

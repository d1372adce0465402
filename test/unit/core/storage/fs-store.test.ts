import fs from 'node:fs';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { FsStore, TooLargeError } from '../../../../core/storage/index.ts';
import { tmpDir } from '../../../fixtures/models.ts';
import { storeContract } from './store-contract.ts';

storeContract('FsStore', async () => {
  const dir = tmpDir('store');
  return { store: new FsStore(dir), cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }) };
});

let root: string;
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('FsStore', () => {
  it('streams a put, reports size and sha256, reads ranges', async () => {
    root = tmpDir('store');
    const s = new FsStore(root);
    const r = await s.put('a/b.txt', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    expect(r.bytes).toBe(11);
    expect(r.sha256).toBe('b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9');
    expect(await text(await s.read('a/b.txt', { start: 6, end: 11 }))).toBe('world');
    expect(await s.stat('a/b.txt')).toEqual({ bytes: 11 });
    expect(await s.stat('a/none')).toBeNull();
  });

  it('replaces atomically and leaves no temp file when a write fails', async () => {
    root = tmpDir('store');
    const s = new FsStore(root);
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
    expect(fs.readdirSync(root)).toEqual(['k']);
  });

  it('refuses keys that would escape its root', async () => {
    root = tmpDir('store');
    const s = new FsStore(root);
    for (const k of ['../x', 'a/../../x', '/abs', 'a//b', '']) await expect(s.put(k, 'x')).rejects.toThrow(/invalid artifact key/);
  });
});

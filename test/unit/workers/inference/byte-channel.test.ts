import { describe, expect, it } from 'vitest';
import { FsStore } from '../../../../core/storage/index.ts';
import { ByteChannel } from '../../../../workers/inference/byte-channel.ts';
import { tmpDir } from '../../../fixtures/models.ts';
import fs from 'node:fs';

describe('ByteChannel', () => {
  it('hands every byte to the store in order, with backpressure', async () => {
    const store = new FsStore(tmpDir('modelq-chan'));
    const ch = new ByteChannel(10);
    const put = store.put('a/b', ch);
    for (let i = 0; i < 100; i++) await ch.push(Buffer.from(`${i},`));
    ch.end();
    await put;
    expect((await store.get('a/b')).toString()).toBe(Array.from({ length: 100 }, (_, i) => `${i},`).join(''));
  });

  it('a failure before the store starts reading still fails the put, leaving no file', async () => {
    const root = tmpDir('modelq-chan');
    const store = new FsStore(root);
    const ch = new ByteChannel();
    const put = store.put('x/y', ch);
    ch.fail(new Error('input gone'));
    await expect(put).rejects.toThrow(/input gone/);
    expect(fs.readdirSync(`${root}/x`)).toEqual([]);
  });

  it('a push waiting for room rejects when the channel fails', async () => {
    const ch = new ByteChannel(1);
    const waiting = ch.push(Buffer.from('too much'));
    ch.fail(new Error('reader died'));
    await expect(waiting).rejects.toThrow(/reader died/);
  });
});

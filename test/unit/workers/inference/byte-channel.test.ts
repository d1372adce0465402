import { describe, expect, it } from 'vitest';
import { FsStore } from '../../../../core/storage/index.ts';
import { ByteChannel } from '../../../../workers/inference/byte-channel.ts';
import { tmpDir } from '../../../fixtures/models.ts';
import fs from 'node:fs';

describe('ByteChannel', () => {
  it('hands every byte to the store in order, through a bound far smaller than the data', async () => {
    const store = new FsStore(tmpDir('modelq-chan'));
    const ch = new ByteChannel(10);
    const put = store.put('a/b', ch);
    for (let i = 0; i < 100; i++) await ch.push(Buffer.from(`${i},`));
    ch.end();
    await put;
    expect((await store.get('a/b')).toString()).toBe(Array.from({ length: 100 }, (_, i) => `${i},`).join(''));
  });

  it('a push waits while more than maxBytes are queued, and goes on once the reader takes bytes', async () => {
    const ch = new ByteChannel(10);
    await ch.push(Buffer.from('12345')); // 5 of 10 bytes: no wait
    let pushed = false;
    const second = ch.push(Buffer.from('678901')).then(() => (pushed = true)); // 11 > 10 queued
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(pushed).toBe(false); // no reader yet: the push is still waiting for room
    const reader = ch[Symbol.asyncIterator]();
    expect(Buffer.from((await reader.next()).value!).toString()).toBe('12345'); // 6 bytes left: room again
    await second;
    expect(pushed).toBe(true);
    ch.end();
    expect(Buffer.from((await reader.next()).value!).toString()).toBe('678901');
    expect((await reader.next()).done).toBe(true);
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

// The registry's serving cache (the producer's per-request lookup of version + config): answers
// from memory within its lifetime, forgets a name at once when this instance writes it, and
// never remembers a failure.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry, type NewVersion } from '../../core/registry.ts';

let redis: Redis;
const prefix = `{t-${Math.random().toString(36).slice(2, 10)}}`;
const v = (sha: string): NewVersion => ({ sha256: sha.repeat(64), bytes: 1, inputs: [], outputs: [] });

beforeAll(() => {
  redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

describe('Registry.serving cache', () => {
  it('answers from memory, and sees its own writes at once', async () => {
    const cached = new Registry(redis, prefix, { servingCacheMs: 60_000 });
    const other = new Registry(redis, prefix); // another producer
    await cached.createVersion('m', v('a'));
    expect((await cached.serving('m')).model.version).toBe(1);

    // Writes by others show only after the cache lifetime...
    await other.createVersion('m', v('b'));
    await other.setConfig('m', { maxBatch: 8, maxDelayMs: 1, instances: 1 });
    expect((await cached.serving('m')).model.version).toBe(1);
    expect((await cached.serving('m')).config.maxBatch).toBe(64);

    // ...writes through this instance at once.
    await cached.setConfig('m', { maxBatch: 4, maxDelayMs: 0, instances: 1 });
    expect(await cached.serving('m')).toMatchObject({ model: { version: 2 }, config: { maxBatch: 4 } });
    await cached.setAlias('m', 'prod', 1);
    expect((await cached.serving('m@prod')).model.version).toBe(1);
    await cached.setAlias('m', 'prod', 2);
    expect((await cached.serving('m@prod')).model.version).toBe(2);
    await cached.createVersion('m', v('c'));
    expect((await cached.serving('m')).model.version).toBe(3);
  });

  it('does not remember failures, and reads Redis every time without a lifetime', async () => {
    const cached = new Registry(redis, prefix, { servingCacheMs: 60_000 });
    await expect(cached.serving('nosuch')).rejects.toMatchObject({ code: 'not_found' });
    await new Registry(redis, prefix).createVersion('nosuch', v('d'));
    expect((await cached.serving('nosuch')).model.version).toBe(1);

    const plain = new Registry(redis, prefix);
    await plain.createVersion('n', v('e'));
    expect((await plain.serving('n')).model.version).toBe(1);
    await new Registry(redis, prefix).createVersion('n', v('f'));
    expect((await plain.serving('n')).model.version).toBe(2);
  });
});

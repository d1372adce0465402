// One cache of reference profiles per store: every reader made for a store shares its reads; a
// failed read is not kept; the oldest profile goes past the bound.
import { describe, expect, it } from 'vitest';
import { profileCache } from '../../../core/drift/index.ts';
import type { ArtifactStore } from '../../../core/storage/index.ts';

function countingStore(missing = new Set<string>()) {
  const reads: string[] = [];
  const store = {
    get: async (key: string) => {
      reads.push(key);
      if (missing.has(key)) throw new Error(`${key} not found`);
      return Buffer.from(JSON.stringify({ rows: key.length, features: [] }));
    },
  } as unknown as ArtifactStore;
  return { store, reads };
}

describe('profileCache', () => {
  it('shares one cache between the readers of a store, not between stores', async () => {
    const a = countingStore();
    const b = countingStore();
    expect((await profileCache(a.store, 4)('k1')).rows).toBe(2);
    expect((await profileCache(a.store)('k1')).rows).toBe(2);
    await profileCache(b.store)('k1');
    expect(a.reads).toEqual(['k1']);
    expect(b.reads).toEqual(['k1']);
  });

  it('reads again after a failure, and drops the oldest past the largest bound asked for', async () => {
    const missing = new Set(['gone']);
    const s = countingStore(missing);
    const get = profileCache(s.store, 2);
    await expect(get('gone')).rejects.toThrow(/not found/);
    missing.clear();
    expect((await get('gone')).rows).toBe(4);
    await get('k2');
    await get('k3'); // past 2: 'gone' is dropped
    await get('gone'); // read again; past 2: 'k2' is dropped
    expect(s.reads).toEqual(['gone', 'gone', 'k2', 'k3', 'gone']);
    profileCache(s.store, 8); // raises the bound: nothing more is dropped
    await get('k4');
    await get('k2');
    await get('k3');
    await get('gone');
    expect(s.reads).toEqual(['gone', 'gone', 'k2', 'k3', 'gone', 'k4', 'k2']);
  });
});

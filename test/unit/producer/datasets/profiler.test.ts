// Dataset profiling in a worker thread: the same profile as on the calling thread, and the same
// 400 naming the line for a malformed or over-long file. On this (the test's) thread the dataset
// functions are replaced by ones that throw: the worker thread loads its own, unmocked copy of
// core/datasets.ts, so only a profile computed in another thread can come back. A profileInThread
// that profiled on the calling thread fails both tests.
import fs from 'node:fs';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { AppError } from '../../../../core/errors.ts';
import { FsStore } from '../../../../core/storage/index.ts';
import { profileInThread } from '../../../../producer/datasets/profiler.ts';
import { tmpDir } from '../../../fixtures/models.ts';

vi.mock('../../../../core/datasets.ts', async (original) => {
  const real = await original<typeof import('../../../../core/datasets.ts')>();
  const here = () => {
    throw new Error('profiled on the calling thread');
  };
  return { ...real, profileDataset: here, datasetRows: here };
});
const { profileDataset } = await vi.importActual<typeof import('../../../../core/datasets.ts')>('../../../../core/datasets.ts');

const dir = tmpDir('profiler');
const store = new FsStore(dir);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('profileInThread', () => {
  it('gives the profile profileDataset gives, from a thread of its own', async () => {
    const csv = 'a,b,c\n' + Array.from({ length: 500 }, (_, i) => `${i},${i / 3},${i % 2 ? 'x' : 'y'}`).join('\n');
    await store.put('d.csv', csv);
    const here = await profileDataset(await store.read('d.csv'), 'csv');
    expect(here.rows).toBe(500);
    expect(await profileInThread({ store: { MODELQ_DATA_DIR: dir }, key: 'd.csv', format: 'csv', maxRowBytes: 1024 })).toEqual(here);
  });

  it('answers a bad file with the AppError naming the line', async () => {
    await store.put('bad.jsonl', `{"a":1}\n{"a":"${'x'.repeat(2000)}"}\n`);
    const e = await profileInThread({ store: { MODELQ_DATA_DIR: dir }, key: 'bad.jsonl', format: 'jsonl', maxRowBytes: 1024 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e).toMatchObject({ code: 'bad_request', message: 'line 2: is longer than 1024 bytes (MODELQ_MAX_ROW_BYTES)' });
  });
});

// Dataset profiling in a worker thread: the same profile as on the calling thread, and the same
// 400 naming the line for a malformed or over-long file.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { profileDataset } from '../../../core/datasets.ts';
import { AppError } from '../../../core/errors.ts';
import { FsStore } from '../../../core/storage/index.ts';
import { profileInThread } from '../../../producer/dataset-profiler.ts';
import { tmpDir } from '../../fixtures/models.ts';

const dir = tmpDir('profiler');
const store = new FsStore(dir);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('profileInThread', () => {
  it('gives the profile profileDataset gives, from a thread of its own', async () => {
    const csv = 'a,b,c\n' + Array.from({ length: 500 }, (_, i) => `${i},${i / 3},${i % 2 ? 'x' : 'y'}`).join('\n');
    await store.put('d.csv', csv);
    const here = await profileDataset(await store.read('d.csv'), 'csv');
    expect(await profileInThread({ store: { MODELQ_DATA_DIR: dir }, key: 'd.csv', format: 'csv', maxRowBytes: 1024 })).toEqual(here);
  });

  it('answers a bad file with the AppError naming the line', async () => {
    await store.put('bad.jsonl', `{"a":1}\n{"a":"${'x'.repeat(2000)}"}\n`);
    const e = await profileInThread({ store: { MODELQ_DATA_DIR: dir }, key: 'bad.jsonl', format: 'jsonl', maxRowBytes: 1024 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e).toMatchObject({ code: 'bad_request', message: 'line 2: is longer than 1024 bytes (MODELQ_MAX_ROW_BYTES)' });
  });
});

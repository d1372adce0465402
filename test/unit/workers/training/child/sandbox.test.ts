// The training sandbox: the child gets no secrets in its environment or its messages, and is
// killed with a clear error past its memory or time limit.
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { datasetKey, profileDataset, type DatasetRecord } from '../../../../../core/datasets.ts';
import { resolveTrain } from '../../../../../core/jobs/train.ts';
import { FsStore } from '../../../../../core/storage/index.ts';
import { trainInSandbox } from '../../../../../workers/training/child/sandbox.ts';
import { tmpDir } from '../../../../fixtures/models.ts';

const dir = tmpDir('sandbox');
const store = new FsStore(dir);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function dataset(): Promise<DatasetRecord> {
  const lines = ['x1,x2,y', ...Array.from({ length: 200 }, (_, i) => `${(i % 13) / 13},${(i % 7) / 7},${i % 2}`)];
  const id = 'ds_00000000000000000077';
  const key = datasetKey(id, 'csv');
  const put = await store.put(key, lines.join('\n'));
  return { id, name: 't', format: 'csv', key, bytes: put.bytes, createdAt: '', ...(await profileDataset(await store.read(key), 'csv')) };
}
const ds = await dataset();
const job = (epochs: number) => resolveTrain({ dataset: ds.id, registerAs: 'm', seed: 1, model: { type: 'mlp' }, epochs, patience: 100_000, target: 'y' }, ds);

describe('training sandbox', () => {
  it('gives the child no API keys, Redis URL or other worker settings', async () => {
    const secret = 'redis://:hunter2-secret@10.0.0.9:6379';
    const saved = { url: process.env.MODELQ_REDIS_URL, keys: process.env.MODELQ_API_KEYS };
    process.env.MODELQ_REDIS_URL = secret;
    process.env.MODELQ_API_KEYS = '{"key-0123456789abcdef":{"tenant":"t","scopes":["admin"]}}';
    let environ = '';
    try {
      await trainInSandbox(
        {
          jobId: 'env',
          job: job(1),
          // What the processors pass: the whole config spread, secrets included.
          cfg: { MODELQ_DATA_DIR: dir, MODELQ_REDIS_URL: secret, MODELQ_API_KEYS: process.env.MODELQ_API_KEYS } as never,
        },
        {
          onStart: (pid) => {
            environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
          },
        },
      );
    } finally {
      process.env.MODELQ_REDIS_URL = saved.url;
      process.env.MODELQ_API_KEYS = saved.keys;
      if (saved.url === undefined) delete process.env.MODELQ_REDIS_URL;
      if (saved.keys === undefined) delete process.env.MODELQ_API_KEYS;
    }
    const names = environ
      .split('\0')
      .filter(Boolean)
      .map((kv) => kv.slice(0, kv.indexOf('=')));
    expect(names).toContain('PATH');
    expect(names.filter((n) => n.startsWith('MODELQ_'))).toEqual([]);
    expect(environ).not.toContain('hunter2');
  });

  it('kills a training past MODELQ_TRAIN_TIMEOUT_S and says so', async () => {
    const run = trainInSandbox({ jobId: 'slow', job: job(1_000_000), cfg: { MODELQ_DATA_DIR: dir, MODELQ_TRAIN_TIMEOUT_S: 2 } });
    await expect(run).rejects.toMatchObject({ code: 'timeout', message: expect.stringMatching(/MODELQ_TRAIN_TIMEOUT_S=2/), retryable: false });
  });

  it('kills a training past MODELQ_TRAIN_MAX_MEMORY_MB and says so', async () => {
    // TensorFlow.js with its WASM backend alone is past 64 MiB resident.
    const run = trainInSandbox({ jobId: 'big', job: job(1_000_000), cfg: { MODELQ_DATA_DIR: dir, MODELQ_TRAIN_MAX_MEMORY_MB: 64 } });
    await expect(run).rejects.toMatchObject({ code: 'bad_request', message: expect.stringMatching(/MODELQ_TRAIN_MAX_MEMORY_MB=64/), retryable: false });
  });
});

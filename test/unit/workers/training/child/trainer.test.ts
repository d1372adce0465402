// The trainer in this process (no Redis): seeded runs are identical, a run stopped after an epoch
// resumes from its checkpoint to the very same model, classes keep their order, and the sandboxed
// child process relays progress and can be killed.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { datasetKey, profileDataset, type DatasetRecord } from '../../../../../core/datasets.ts';
import { resolveTrain, trainKeys, type TrainProgress, type TrainRequest } from '../../../../../core/jobs/train.ts';
import { decodeModel } from '../../../../../workers/onnx/proto.ts';
import { FsStore } from '../../../../../core/storage/index.ts';
import { runTraining } from '../../../../../workers/training/child/run-training.ts';
import { trainInSandbox } from '../../../../../workers/training/child/sandbox.ts';
import { tmpDir } from '../../../../fixtures/models.ts';

const dir = tmpDir('trainer');
const store = new FsStore(dir);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** 300 rows: x1..x3 uniform in [-1, 1], k = 0/1/2 by x1 + x2, s the same as strings, y = 2 x1 - x3. */
async function dataset(): Promise<DatasetRecord> {
  let seed = 7;
  const r = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const lines = ['x1,x2,x3,k,s,y'];
  for (let i = 0; i < 300; i++) {
    const [a, b, c] = [r(), r(), r()];
    const k = a + b < -0.4 ? 0 : a + b < 0.4 ? 1 : 2;
    lines.push(`${a},${b},${c},${k},${['zero', 'one', 'two'][k]},${2 * a - c}`);
  }
  const id = 'ds_00000000000000000042';
  const key = datasetKey(id, 'csv');
  const put = await store.put(key, lines.join('\n'));
  return { id, name: 't', format: 'csv', key, bytes: put.bytes, createdAt: '', ...(await profileDataset(await store.read(key), 'csv')) };
}
const ds = await dataset();
const job = (extra: Partial<TrainRequest> & { target: string }) =>
  resolveTrain({ dataset: ds.id, registerAs: 'm', seed: 5, model: { type: 'mlp' }, epochs: 8, patience: 100, features: ['x1', 'x2', 'x3'], ...extra }, ds);
const modelBytes = (jobId: string) => fs.readFileSync(store.localPath(trainKeys.model(jobId)));

describe('trainer', () => {
  it('gives identical models for identical seeds, and another for another seed', async () => {
    const a = await runTraining({ store, jobId: 'seed-a', job: job({ target: 'y' }) });
    await runTraining({ store, jobId: 'seed-b', job: job({ target: 'y' }) });
    await runTraining({ store, jobId: 'seed-c', job: job({ target: 'y', seed: 6 }) });
    expect(a).toMatchObject({ epochsRun: 8, resumedFromEpoch: 0, stoppedEarly: false });
    expect(modelBytes('seed-a').equals(modelBytes('seed-b'))).toBe(true);
    expect(modelBytes('seed-a').equals(modelBytes('seed-c'))).toBe(false);
  });

  it('resumes a stopped run from its last checkpoint to exactly the uninterrupted model', async () => {
    const full: TrainProgress[] = [];
    await runTraining({ store, jobId: 'whole', job: job({ target: 's' }), onProgress: (p) => void full.push(p) });
    await expect(
      runTraining({
        store,
        jobId: 'cut',
        job: job({ target: 's' }),
        onProgress: (p) => {
          if (p.epoch === 3) throw new Error('killed');
        },
      }),
    ).rejects.toThrow('killed');
    const seen: TrainProgress[] = [];
    const resumed = await runTraining({ store, jobId: 'cut', job: job({ target: 's' }), onProgress: (p) => void seen.push(p) });
    expect(resumed.resumedFromEpoch).toBe(3);
    expect(seen[0]).toMatchObject({ epoch: 3, startedAtEpoch: 4 });
    expect(seen.slice(1).map((p) => p.epoch)).toEqual([4, 5, 6, 7, 8]);
    expect(seen.at(-1)!.curve).toEqual(full.at(-1)!.curve);
    expect(modelBytes('cut').equals(modelBytes('whole'))).toBe(true);
    // A finished run is not trained again: a re-run only exports.
    const again = await runTraining({ store, jobId: 'cut', job: job({ target: 's' }) });
    expect(again).toMatchObject({ resumedFromEpoch: 8, epochsRun: 8 });
  });

  it('orders classes: integers numerically (so 0..k-1 keep their index), strings by value', async () => {
    const ints = await runTraining({ store, jobId: 'ints', job: job({ target: 'k' }) });
    const strs = await runTraining({ store, jobId: 'strs', job: job({ target: 's' }) });
    expect(ints.classes).toEqual([0, 1, 2]);
    expect(strs.classes).toEqual(['one', 'two', 'zero']);
    const meta = Object.fromEntries(decodeModel(modelBytes('ints')).metadataProps.map((p) => [p.key, p.value]));
    expect(meta['modelq.classes']).toBe('[0,1,2]');
  });

  it('trains in a child process that reports each epoch and dies when aborted', async () => {
    const progress: number[] = [];
    const out = await trainInSandbox(
      { jobId: 'child', job: job({ target: 'y', epochs: 3 }), cfg: { MODELQ_DATA_DIR: dir } },
      { onProgress: (p) => void progress.push(p.epoch) },
    );
    expect(progress).toEqual([1, 2, 3]);
    expect(out.epochsRun).toBe(3);
    const ac = new AbortController();
    const aborted = trainInSandbox(
      { jobId: 'child-abort', job: job({ target: 'y', epochs: 10_000 }), cfg: { MODELQ_DATA_DIR: dir } },
      {
        signal: ac.signal,
        onProgress: (p) => {
          if (p.epoch === 2) ac.abort(new Error('stop now'));
        },
      },
    );
    await expect(aborted).rejects.toThrow('stop now');
  });
});

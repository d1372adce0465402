// A worker killed mid-training: the job is taken up by another worker, which resumes from the last
// checkpoint (not from epoch 1) and ends with exactly the model an uninterrupted run gives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson, startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  // A short lock so the killed worker's job is found stalled within seconds.
  p = await startPlatform({ workers: 1, env: { MODELQ_JOB_LOCK_MS: '2000' } });
});
afterAll(async () => {
  await p?.stop();
});

function csv(n: number): string {
  let s = 9;
  const r = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const lines = ['a,b,k'];
  for (let i = 0; i < n; i++) {
    const [a, b] = [r(), r()];
    lines.push(`${a},${b},${a * b > 0 ? 1 : 0}`);
  }
  return lines.join('\n');
}

const getJob = async (id: string) => (await fetch(`${p.url}/v1/jobs/${id}`)).json();
const completed = (id: string) =>
  until(
    async () => {
      const j = await getJob(id);
      if (j.state === 'failed') throw new Error(`job ${id} failed: ${JSON.stringify(j.error)}`);
      return j.state === 'completed' ? j : null;
    },
    `job ${id} to complete`,
    60_000,
  );

describe('training after a worker is killed', () => {
  it('resumes from the checkpoint and reproduces the uninterrupted model', async () => {
    const ds = await (await fetch(`${p.url}/v1/datasets?format=csv`, { method: 'POST', body: csv(600), headers: { 'content-type': 'text/csv' } })).json();
    const spec = { dataset: ds.id, target: 'k', model: { type: 'mlp' }, epochs: 15, patience: 1000, batchSize: 16, seed: 2 };
    const id = (await (await postJson(`${p.url}/v1/jobs/train`, { ...spec, registerAs: 'resumed' })).json()).id;
    await until(async () => (await getJob(id)).progress?.epoch >= 3, 'three epochs', 30_000);
    const victim = p.workers[0]!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    const atKill = (await getJob(id)).progress.epoch;
    expect(atKill).toBeLessThan(15);
    await p.addWorker();

    const done = await completed(id);
    expect(done.result.resumedFromEpoch).toBeGreaterThanOrEqual(3);
    expect(done.progress.startedAtEpoch).toBe(done.result.resumedFromEpoch + 1);
    expect(done.progress.curve.map((c: { epoch: number }) => c.epoch)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));

    const ref = await completed((await (await postJson(`${p.url}/v1/jobs/train`, { ...spec, registerAs: 'uninterrupted' })).json()).id);
    expect(ref.result.resumedFromEpoch).toBe(0);
    expect(done.result.sha256).toBe(ref.result.sha256);
    expect(done.progress.curve).toEqual(ref.progress.curve);
  });
});

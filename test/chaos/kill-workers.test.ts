// Workers killed with SIGKILL at random moments during a batch, several times, each replaced by a
// new one: the output still has every row exactly once with the right values.
import { describe, expect, it } from 'vitest';
import { startPlatform, until, uploadModel } from '../helpers/platform.ts';
import { batchBody, chaosRandom, expectExactOutput, model } from './helpers.ts';

const KILLS = 4;

describe('chaos: worker kills', () => {
  it(`survives ${KILLS} SIGKILLs at random moments during a batch`, async () => {
    const random = chaosRandom('worker kills');
    const p = await startPlatform({ workers: 2, env: { MODELQ_JOB_LOCK_MS: '2000', MODELQ_SCORE_CONCURRENCY: '1' } });
    try {
      expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
      const n = 150_000;
      const { body, x } = batchBody(n, 5);
      const { id } = await (await fetch(`${p.url}/v1/batches?model=m&chunkRows=1000`, { method: 'POST', body })).json();
      let kills = 0;
      const replacements: Promise<unknown>[] = [];
      for (let k = 0; k < KILLS; k++) {
        const status = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()).status;
        if (['completed', 'failed'].includes(status)) break;
        await new Promise((r) => setTimeout(r, 200 + random() * 800)); // a random moment
        const living = () => p.workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
        if (!living().length) await Promise.race(replacements); // never kill the last one before its successor runs
        const alive = living();
        if (!alive.length) continue;
        const victim = alive[Math.floor(random() * alive.length)]!;
        victim.child.kill('SIGKILL');
        await victim.exited;
        kills++;
        // The replacement starts while the next kill is already on its way.
        replacements.push(p.addWorker({ MODELQ_JOB_LOCK_MS: '2000', MODELQ_SCORE_CONCURRENCY: '1' }));
      }
      await Promise.all(replacements);
      const done = await until(
        async () => {
          const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
          return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
        },
        'the batch to end',
        120_000,
      );
      expect(done.error ?? '').toBe('');
      expect(kills).toBeGreaterThanOrEqual(3);
      expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
      await expectExactOutput(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text(), x, n);
      console.log(`chaos: ${kills} worker kills survived`);
    } finally {
      await p.stop();
    }
  });
});

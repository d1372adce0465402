// A registered model whose file no longer loads (corrupted in the store): its jobs fail at once
// with the reason instead of being retried, online (on either transport) and in batches. The worker
// checks the file against the version's signed digest before onnxruntime sees it, so the reason
// names the version and says the stored file was altered.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { modelArtifactKey } from '../../core/registry.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

type Transport = 'streams' | 'bullmq';

/** A platform whose model 'broken' was registered and then corrupted in the store. */
async function brokenPlatform(env: Record<string, string>): Promise<TestPlatform> {
  const p = await startPlatform({ workers: 1, env });
  const res = await uploadModel(p.url, 'broken', buildMlp({ sizes: [4, 3], seed: 9 }));
  expect(res.status).toBe(201);
  const { sha256 } = await res.json();
  // The worker that checked the upload holds the session; a new worker has to load the file.
  const first = p.workers[0]!;
  first.child.kill('SIGTERM');
  await first.exited;
  fs.writeFileSync(path.join(p.cfg.MODELQ_DATA_DIR, modelArtifactKey(sha256)), 'no longer a model');
  await p.addWorker();
  return p;
}

const body = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };

// The default transport (streams) first; MODELQ_ONLINE_TRANSPORT=bullmq set explicitly also checks the
// failed job kept on the infer queue (attempted once), which the board shows.
describe.each(['streams', 'bullmq'] as Transport[])('a model that cannot load (online transport %s)', (transport) => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await brokenPlatform(transport === 'bullmq' ? { MODELQ_ONLINE_TRANSPORT: 'bullmq' } : {});
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('fails an online request at once with the reason', async () => {
    const res = await postJson(`${p.url}/v2/models/broken/infer`, body);
    expect(res.status).toBe(422);
    expect((await res.json()).error).toMatch(/model broken@1: the stored file was altered/);
    if (transport === 'bullmq') {
      const failed = await p.deps.queues.queue('infer').getFailed();
      expect(failed).toHaveLength(1);
      expect(failed[0]!.attemptsMade).toBe(1); // not retried
    } else {
      // Answered once and acknowledged: the entry is gone, not left pending to be run again.
      const key = `${p.deps.prefix}:online:infer`;
      await until(async () => (await p.redis.xlen(key)) === 0, 'the entry acknowledged', 5000);
      expect(Number(((await p.redis.xpending(key, 'workers')) as [number])[0])).toBe(0);
    }
    // Asked again, the same named failure (the load is not retried into a hang or a 5xx).
    const again = await postJson(`${p.url}/v2/models/broken/infer`, body);
    expect(again.status).toBe(422);
    expect((await again.json()).error).toMatch(/model broken@1: the stored file was altered/);
  });

  if (transport === 'streams') {
    it('fails a batch with the reason', async () => {
      const { id } = await (await fetch(`${p.url}/v1/batches?model=broken`, { method: 'POST', body: '{"input":[1,2,3,4]}' })).json();
      const v = await until(async () => {
        const b = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
        return ['failed', 'completed'].includes(b.status) ? b : null;
      }, 'the batch to end');
      expect(v.status).toBe('failed');
      expect(v.error).toMatch(/chunk 0 failed: model broken@1: the stored file was altered/);
      const chunk = (await p.deps.queues.queue('score').getFailed())[0]!;
      expect(chunk.attemptsMade).toBe(1);
    });
  }
});

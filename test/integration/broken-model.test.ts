// A registered model whose file no longer loads (corrupted in the store): its jobs fail at once
// with onnxruntime's reason instead of being retried, online and in batches.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { modelArtifactKey } from '../../core/registry.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  const res = await uploadModel(p.url, 'broken', buildMlp({ sizes: [4, 3], seed: 9 }));
  expect(res.status).toBe(201);
  const { sha256 } = await res.json();
  // The worker that checked the upload holds the session; a new worker has to load the file.
  const first = p.workers[0]!;
  first.child.kill('SIGTERM');
  await first.exited;
  fs.writeFileSync(path.join(p.cfg.MODELQ_DATA_DIR, modelArtifactKey(sha256)), 'no longer a model');
  await p.addWorker();
});
afterAll(async () => {
  await p?.stop();
});

describe('a model that cannot load', () => {
  it('fails an online request at once with the reason', async () => {
    const res = await postJson(`${p.url}/v2/models/broken/infer`, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    expect(res.status).toBe(422);
    expect((await res.json()).error).toMatch(/protobuf parsing failed/);
    const failed = await p.deps.queues.queue('infer').getFailed();
    expect(failed).toHaveLength(1);
    expect(failed[0]!.attemptsMade).toBe(1); // not retried
  });

  it('fails a batch with the reason', async () => {
    const { id } = await (await fetch(`${p.url}/v1/batches?model=broken`, { method: 'POST', body: '{"input":[1,2,3,4]}' })).json();
    const v = await until(async () => {
      const b = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      return ['failed', 'completed'].includes(b.status) ? b : null;
    }, 'the batch to end');
    expect(v.status).toBe('failed');
    expect(v.error).toMatch(/chunk 0 failed: .*protobuf parsing failed/);
    const chunk = (await p.deps.queues.queue('score').getFailed())[0]!;
    expect(chunk.attemptsMade).toBe(1);
  });
});

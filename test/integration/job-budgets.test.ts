// Time limits of jobs whose work runs on the worker's main thread between engine runs: a
// compression past MODELQ_COMPRESS_TIMEOUT_S fails at once (not retried) with the limit named and
// registers nothing, and the worker goes on serving.
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { fromFailedReason } from '../../core/errors.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let events: QueueEvents;
beforeAll(async () => {
  // Measuring speed alone takes 4 s (four measurements of at least a second): past a 1 s limit on any machine.
  p = await startPlatform({ workers: 1, env: { MODELQ_COMPRESS_TIMEOUT_S: '1' } });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  expect((await uploadModel(p.url, 'mlp', buildMlp({ sizes: [64, 256, 10], seed: 8 }))).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await events?.close();
  await p?.stop();
});

describe('job budgets', () => {
  it('a compression past MODELQ_COMPRESS_TIMEOUT_S fails at once, naming it, and registers nothing', async () => {
    const res = await postJson(`${p.url}/v1/jobs/compress`, { model: 'mlp@1', method: 'fp16', registerAs: 'mlp-fp16' });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    const job = (await p.deps.queues.queue('compress').getJob(id))!;
    const err = await job.waitUntilFinished(events, 120_000).then(
      () => null,
      (e: Error) => e,
    );
    expect(err).not.toBeNull();
    expect(fromFailedReason(err!.message)).toMatchObject({
      code: 'timeout',
      message: 'the compression exceeded its time limit of 1 s (MODELQ_COMPRESS_TIMEOUT_S) and was stopped',
    });
    expect((await p.deps.queues.queue('compress').getJob(id))!.attemptsMade).toBe(1);
    expect((await fetch(`${p.url}/v1/models/mlp-fp16`)).status).toBe(404);
    const infer = await postJson(`${p.url}/v2/models/mlp/infer`, { inputs: [{ name: 'input', shape: [1, 64], datatype: 'FP32', data: Array(64).fill(0.1) }] });
    expect(infer.status).toBe(200);
  }, 120_000);
});

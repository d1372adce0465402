// GPU and CPU pools by queue: batches and requests that ask for device "gpu" go to the GPU twin of
// their queue, which a CPU worker never takes; a worker started with MODELQ_DEVICE=cuda does (on
// this machine without CUDA its engine falls back to CPU, but it consumes the GPU queues).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_INFER_TIMEOUT_MS: '1500' } });
  expect((await uploadModel(p.url, 'm', buildMlp({ sizes: [4, 8, 3], seed: 2 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const status = async (id: string) => (await (await fetch(`${p.url}/v1/batches/${id}`)).json()).status as string;
const rowsBody = Array.from({ length: 20 }, (_, i) => JSON.stringify({ id: i, input: [i, 1, 2, 3] })).join('\n');
const inferBody = (device?: string) => ({
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
  ...(device ? { parameters: { device } } : {}),
});

describe('GPU queues', () => {
  it('a CPU worker never takes GPU work; a cuda worker does', async () => {
    const gpu = await (await fetch(`${p.url}/v1/batches?model=m&device=gpu&chunkRows=5`, { method: 'POST', body: rowsBody })).json();
    const cpu = await (await fetch(`${p.url}/v1/batches?model=m&chunkRows=5`, { method: 'POST', body: rowsBody })).json();
    // The CPU batch, submitted after the GPU one, completes on the CPU worker ...
    await until(async () => (await status(cpu.id)) === 'completed', 'the CPU batch');
    // ... while every GPU chunk is still waiting for a GPU worker.
    expect(await status(gpu.id)).toBe('queued');
    expect(await p.deps.queues.queue('score-gpu').getJobCounts('waiting', 'active', 'completed')).toEqual({ waiting: 4, active: 0, completed: 0 });
    const online = await postJson(`${p.url}/v2/models/m/infer`, inferBody('gpu'));
    expect(online.status).toBe(504); // nobody takes it
    expect((await postJson(`${p.url}/v2/models/m/infer`, inferBody())).status).toBe(200);
    expect((await postJson(`${p.url}/v2/models/m/infer`, inferBody('tpu'))).status).toBe(400);

    const cuda = await p.addWorker({ MODELQ_DEVICE: 'cuda' });
    await until(async () => (await status(gpu.id)) === 'completed', 'the GPU batch on the cuda worker');
    expect((await postJson(`${p.url}/v2/models/m/infer`, inferBody('gpu'))).status).toBe(200);
    const out = (await (await fetch(`${p.url}/v1/batches/${gpu.id}/output`)).text()).trim().split('\n');
    expect(out).toHaveLength(20);
    expect(cuda.lines.some((l) => l.includes('"queues":[') && l.includes('score-gpu'))).toBe(true);
  });
});

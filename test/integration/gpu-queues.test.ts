// GPU and CPU pools by queue: batches and requests that ask for device "gpu" go to the GPU twin of
// their queue, which a CPU worker never takes; a worker started with MODELQ_DEVICE=cuda does. Where
// CUDA cannot be used (hidden here with CUDA_VISIBLE_DEVICES=-1, so this runs on every machine) that
// worker's engine falls back to CPU and still serves the GPU queues. On a GPU host, a cuda worker
// with CUDA in view runs on the GPU (skipped, with the reason printed, elsewhere).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { readWorkerStats } from '../../core/stats.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun } from '../fixtures/models.ts';
import { cudaForTests } from '../helpers/cuda.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform, type WorkerProc } from '../helpers/platform.ts';

const cuda = await cudaForTests('gpu-queues');
const model = buildMlp({ sizes: [4, 8, 3], seed: 2 });
let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_INFER_TIMEOUT_MS: '1500' } });
  expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
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
const gpuBatch = async () =>
  (await (await fetch(`${p.url}/v1/batches?model=m&device=gpu&chunkRows=5`, { method: 'POST', body: rowsBody })).json()).id as string;
const workerDevice = async (w: WorkerProc) => (await readWorkerStats(p.redis, keyPrefix(p.cfg))).find((s) => s.pid === w.child.pid)?.device;
const stopWorker = async (w: WorkerProc) => {
  w.child.kill('SIGTERM');
  await w.exited;
};

describe('GPU queues', () => {
  let pendingGpu = '';

  it('a CPU worker never takes GPU work', async () => {
    pendingGpu = await gpuBatch();
    const cpu = await (await fetch(`${p.url}/v1/batches?model=m&chunkRows=5`, { method: 'POST', body: rowsBody })).json();
    // The CPU batch, submitted after the GPU one, completes on the CPU worker ...
    await until(async () => (await status(cpu.id)) === 'completed', 'the CPU batch');
    // ... while every GPU chunk is still waiting for a GPU worker.
    expect(await status(pendingGpu)).toBe('queued');
    expect(await p.deps.queues.queue('score-gpu').getJobCounts('waiting', 'active', 'completed')).toEqual({ waiting: 4, active: 0, completed: 0 });
    const online = await postJson(`${p.url}/v2/models/m/infer`, inferBody('gpu'));
    expect(online.status).toBe(504); // nobody takes it
    expect((await postJson(`${p.url}/v2/models/m/infer`, inferBody())).status).toBe(200);
    expect((await postJson(`${p.url}/v2/models/m/infer`, inferBody('tpu'))).status).toBe(400);
  });

  it('a cuda worker without a usable GPU takes the GPU queues, falls back to CPU once, and serves them', async () => {
    const w = await p.addWorker({ MODELQ_DEVICE: 'cuda', CUDA_VISIBLE_DEVICES: '-1' });
    try {
      expect(w.lines.some((l) => l.includes('"queues":[') && l.includes('score-gpu'))).toBe(true);
      await until(async () => (await status(pendingGpu)) === 'completed', 'the GPU batch on the cuda worker');
      expect((await postJson(`${p.url}/v2/models/m/infer`, inferBody('gpu'))).status).toBe(200);
      const out = (await (await fetch(`${p.url}/v1/batches/${pendingGpu}/output`)).text()).trim().split('\n');
      expect(out).toHaveLength(20);
      // Its figures say cuda until the first session falls back, then cpu (published every few seconds).
      await until(async () => (await workerDevice(w)) === 'cpu', 'the worker to publish its fallback to cpu');
      expect(w.lines.filter((l) => l.includes('CUDA execution provider unavailable, using CPU')).length).toBeGreaterThan(0);
    } finally {
      await stopWorker(w);
    }
  });

  it.skipIf(!cuda.available)(
    `on a GPU host, a cuda worker runs GPU batches on CUDA with no fallback${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`,
    async () => {
      const w = await p.addWorker({ MODELQ_DEVICE: 'cuda' });
      try {
        const id = await gpuBatch();
        await until(async () => (await status(id)) === 'completed', 'the GPU batch on the GPU');
        const lines = (await (await fetch(`${p.url}/v1/batches/${id}/output`)).text()).trim().split('\n');
        expect(lines).toHaveLength(20);
        const x = new Float32Array(rowsBody.split('\n').flatMap((l) => JSON.parse(l).input as number[]));
        const want = (await directRun(model, { input: { data: x, dims: [20, 4] } })).output!;
        for (const l of lines) {
          const r = JSON.parse(l);
          (r.outputs.output as number[]).forEach((v, j) => expect(v).toBeCloseTo(want[r.id * 3 + j]!, 4));
        }
        expect(await until(() => workerDevice(w), 'the worker to publish its stats')).toBe('cuda');
        expect(w.lines.filter((l) => l.includes('CUDA execution provider unavailable'))).toEqual([]);
      } finally {
        await stopWorker(w);
      }
    },
  );
});

// Models warm before traffic (workers/warm.ts). A 50 MB model registered while a worker that serves
// `infer` is running is loaded on every engine thread of that worker before any request: the worker
// reports it loaded, and its first request creates no session (the worker's load counter does not
// move). A worker started later loads the recently used model by itself. A request whose model is
// still loading waits without the load counting against its timeout; when the timeout passes during
// the load it is answered 503 with Retry-After (gRPC: UNAVAILABLE), not 504. Everything is asserted
// on what the workers report, never on elapsed time.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { Registry } from '../../core/registry.ts';
import { readWorkerStats, type WorkerStats } from '../../core/stats.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { bigTableModel, slowLoadingModel } from '../fixtures/warm-models.ts';
import { codeOf, inferenceClient } from '../helpers/grpc-client.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform, type WorkerProc } from '../helpers/platform.ts';

const workerStats = async (p: TestPlatform, w: WorkerProc): Promise<WorkerStats | undefined> =>
  (await readWorkerStats(p.redis, p.deps.prefix)).find((s) => s.pid === w.child.pid);
const modelOn = (s: WorkerStats | undefined, sha256: string) => s?.models?.find((m) => m.sha256 === sha256);

describe('a freshly registered model', () => {
  let p: TestPlatform;
  let server: WorkerProc;
  const big = bigTableModel(); // 50,000 x 256 FP32: 51 MB
  let sha256 = '';

  beforeAll(async () => {
    p = await startPlatform();
    await p.addWorker({ MODELQ_QUEUES: 'model' }); // checks uploads; serves nothing
    server = await p.addWorker({ MODELQ_QUEUES: 'infer', MODELQ_ENGINE_THREADS: '2' });
  }, 60_000);
  afterAll(async () => p?.stop());

  it('is loaded on every engine thread of the serving worker before its first request, which then loads nothing', async () => {
    expect(big.length).toBeGreaterThan(50_000_000);
    const r = await uploadModel(p.url, 'big', big);
    expect(r.status, await r.clone().text()).toBe(201);
    sha256 = ((await r.json()) as { sha256: string }).sha256;

    // No request has been sent: the registration alone made the worker load it, on both threads.
    const warm = await until(async () => {
      const s = await workerStats(p, server);
      return modelOn(s, sha256)?.state === 'loaded' ? s : undefined;
    }, 'the serving worker to report the model loaded');
    expect(modelOn(warm, sha256)).toMatchObject({ label: 'big@1', state: 'loaded', threads: 2 });
    expect(warm.engine.requests).toBe(0);
    expect(warm.engine.loads).toBe(2);
    expect(server.lines.some((l) => l.includes('model loaded ahead of requests') && l.includes('"why":"registered"'))).toBe(true);

    const res = await postJson(`${p.url}/v2/models/big/infer`, { inputs: [{ name: 'idx', shape: [2, 1], datatype: 'INT64', data: [7, 49_999] }] });
    expect(res.status, await res.clone().text()).toBe(200);
    const out = ((await res.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] }).outputs[0]!;
    expect(out.shape).toEqual([2, 1, 256]);
    expect(out.data.slice(0, 2)).toEqual([7, 7 + 1 / 256]);
    expect(out.data[256 + 255]).toBeCloseTo(49_999 + 255 / 256, 2);

    // The first request ran on sessions that existed before it: no load on its path.
    const after = await until(async () => {
      const s = await workerStats(p, server);
      return s && s.engine.requests >= 1 ? s : undefined;
    }, 'the request to show in the worker figures');
    expect(after.engine.loads).toBe(2);
  }, 90_000);

  it('is loaded by a worker started later, because it was used recently', async () => {
    const registry = new Registry(p.redis, p.deps.prefix);
    await until(async () => (await registry.recentlyUsed(0, 10)).some((u) => u.name === 'big' && u.version === 1), 'the use to be recorded');
    const late = await p.addWorker({ MODELQ_QUEUES: 'infer' });
    const s = await until(async () => {
      const st = await workerStats(p, late);
      return modelOn(st, sha256)?.state === 'loaded' ? st : undefined;
    }, 'the new worker to load the recently used model');
    expect(s.engine.requests).toBe(0);
    expect(late.lines.some((l) => l.includes('model loaded ahead of requests') && l.includes('"why":"recently used"'))).toBe(true);
  }, 90_000);
});

describe('a request that meets a model still loading', () => {
  let p: TestPlatform;
  let grpc: RunningGrpcServer;

  beforeAll(async () => {
    // A short timeout and a model whose session takes seconds to create (constant folding).
    p = await startPlatform({ env: { MODELQ_INFER_TIMEOUT_MS: '500', MODELQ_WARM_RECENT: '0' } });
    await p.addWorker({ MODELQ_QUEUES: 'model' });
    grpc = await startGrpcServer(p.deps, {
      port: 0,
      host: '127.0.0.1',
      keys: KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }),
    });
  }, 60_000);
  afterAll(async () => {
    await grpc?.close();
    await p?.stop();
  });

  it('answers 503 with Retry-After (gRPC UNAVAILABLE) while the load goes on, then the answer', async () => {
    const r = await uploadModel(p.url, 'slow', slowLoadingModel(12));
    expect(r.status, await r.clone().text()).toBe(201);
    const { sha256 } = (await r.json()) as { sha256: string };
    // Started after the registration and with no recent use to load: the first request finds it cold.
    const server = await p.addWorker({ MODELQ_QUEUES: 'infer' });
    expect(modelOn(await workerStats(p, server), sha256)).toBeUndefined();

    const x = Array.from({ length: 2048 }, (_, i) => i);
    const body = { inputs: [{ name: 'x', shape: [1, 2048], datatype: 'FP32', data: x }] };
    const client = inferenceClient(`127.0.0.1:${grpc.port}`, { 'grpc.max_receive_message_length': 64 << 20 });
    try {
      const [rest, grpcCode] = await Promise.all([
        postJson(`${p.url}/v2/models/slow/infer`, body),
        codeOf(
          client.call('ModelInfer', {
            model_name: 'slow',
            inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2048] }],
            raw_input_contents: [Buffer.from(new Float32Array(x).buffer)],
          }),
        ),
      ]);
      expect(rest.status, await rest.clone().text()).toBe(503);
      expect(Number(rest.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(((await rest.json()) as { error: string }).error).toMatch(/slow@1 is still loading/);
      expect(grpcCode).toBe(status.UNAVAILABLE);
    } finally {
      client.close();
    }

    // The load both requests met was one load; once it is done the model answers.
    const s = await until(
      async () => {
        const st = await workerStats(p, server);
        return modelOn(st, sha256)?.state === 'loaded' ? st : undefined;
      },
      'the load to finish',
      120_000,
    );
    expect(s.engine.loads).toBe(1);
    const ok = await postJson(`${p.url}/v2/models/slow/infer`, body);
    expect(ok.status, await ok.clone().text()).toBe(200);
    const y = ((await ok.json()) as { outputs: { data: number[] }[] }).outputs[0]!.data;
    // x @ P^13 rotates x by 13 places.
    expect(y.slice(0, 3)).toEqual([2048 - 13, 2048 - 12, 2048 - 11]);
    expect(y[13]).toBe(0);
  }, 240_000);
});

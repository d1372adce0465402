// gRPC is held to the limits REST applies, counted together with REST: MODELQ_RATE_LIMIT per key or
// address, MODELQ_MAX_INFLIGHT and the per-model bound, each a RESOURCE_EXHAUSTED that says it may
// be retried (`retryable`, `retry-after` trailers), like REST's 429 with Retry-After; and the Redis
// memory mark (MODELQ_REDIS_MEMORY_HIGH), UNAVAILABLE as REST's 503 (issue 25 case 8).
import { type ServiceError, status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { backpressureFor } from '../../producer/inference/backpressure.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import { freePort, PrivateRedis } from '../chaos/helpers.ts';

let p: TestPlatform | undefined;
let server: RunningGrpcServer | undefined;
let c: InferenceClient | undefined;
let privateRedis: PrivateRedis | undefined;
afterEach(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
  await privateRedis?.stop(); // after the platform, which would wait for it
  [p, server, c, privateRedis] = [undefined, undefined, undefined, undefined];
});

async function start(env: Record<string, string>): Promise<{ p: TestPlatform; c: InferenceClient }> {
  p = await startPlatform({ env });
  server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
  c = inferenceClient(`127.0.0.1:${server.port}`);
  return { p, c };
}

/** The call's failure (a ServiceError), or null when it succeeded. */
const failureOf = (call: Promise<unknown>): Promise<ServiceError | null> =>
  call.then(
    () => null,
    (e: ServiceError) => e,
  );
const infer = { model_name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }] };

describe('gRPC limits', () => {
  it('MODELQ_RATE_LIMIT: RESOURCE_EXHAUSTED beyond it, retryable, on the count REST shares', async () => {
    const { p, c } = await start({ MODELQ_RATE_LIMIT: '5/m' });
    const results = [];
    for (let i = 0; i < 8; i++) results.push(await failureOf(c.call('ServerMetadata', {})));
    expect(results.slice(0, 5)).toEqual([null, null, null, null, null]);
    for (const e of results.slice(5)) {
      expect(e?.code).toBe(status.RESOURCE_EXHAUSTED);
      expect(e?.details).toMatch(/rate limit of 5\/m exceeded/);
      expect(e?.metadata.get('retryable')).toEqual(['true']);
      expect(e?.metadata.get('retry-after')).toEqual(['60']);
    }
    // Health calls are not counted, as /v2/health/* is not; REST draws on the same allowance.
    expect(await c.call('ServerLive', {})).toEqual({ live: true });
    expect((await fetch(`${p.url}/v2`)).status).toBe(429);
  });

  it('MODELQ_MAX_INFLIGHT=1: a second ModelInfer while one is in flight is RESOURCE_EXHAUSTED', async () => {
    const { p, c } = await start({ MODELQ_MAX_INFLIGHT: '1', MODELQ_INFER_TIMEOUT_MS: '60000' });
    await p.addWorker({ MODELQ_QUEUES: 'model' }); // checks the upload; nothing consumes `infer`, so a call stays in flight
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    // Left waiting for a worker: it ends when the server is closed after the test.
    void failureOf(c.call('ModelInfer', infer));
    await until(() => backpressureFor(p.deps).gate.inFlight === 1, 'the first call in flight');
    const second = await failureOf(c.call('ModelInfer', infer));
    expect(second?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(second?.details).toMatch(/MODELQ_MAX_INFLIGHT=1/);
    expect(second?.metadata.get('retryable')).toEqual(['true']);
    // REST counts on the same gate.
    const rest = await fetch(`${p.url}/v2/models/m/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(rest.status).toBe(429);
  });

  it('MODELQ_MAX_INFLIGHT_PER_MODEL=1: the per-model bound holds on gRPC too', async () => {
    const { p, c } = await start({ MODELQ_MAX_INFLIGHT_PER_MODEL: '1', MODELQ_INFER_TIMEOUT_MS: '60000' });
    await p.addWorker({ MODELQ_QUEUES: 'model' });
    expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
    void failureOf(c.call('ModelInfer', infer));
    await until(() => backpressureFor(p.deps).gate.inFlight === 1, 'the first call in flight');
    const second = await failureOf(c.call('ModelInfer', infer));
    expect(second?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(second?.details).toMatch(/MODELQ_MAX_INFLIGHT_PER_MODEL=1/);
  });

  it('MODELQ_REDIS_MEMORY_HIGH: past the mark, ModelInfer is refused as REST is, and served again once under it', async () => {
    // A Redis of our own, whose maxmemory this test may change.
    const redis = (privateRedis = new PrivateRedis(await freePort()));
    await redis.start();
    {
      const { p, c } = await start({ MODELQ_REDIS_URL: redis.url, MODELQ_REDIS_MEMORY_HIGH: '0.01' });
      await p.addWorker();
      expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
      expect(await failureOf(c.call('ModelInfer', infer))).toBeNull();
      // 1% of 64 MiB is far below what Redis uses already.
      await p.redis.config('SET', 'maxmemory', String(64 * 1024 * 1024));
      const guard = backpressureFor(p.deps).memory;
      await guard.read();
      expect(guard.figures.used).toBeGreaterThan(guard.figures.max * 0.01);
      const refused = await failureOf(c.call('ModelInfer', infer));
      expect(refused?.code).toBe(status.UNAVAILABLE);
      expect(refused?.details).toMatch(/MODELQ_REDIS_MEMORY_HIGH=0.01/);
      expect(refused?.metadata.get('retryable')).toEqual(['true']);
      const rest = await fetch(`${p.url}/v2/models/m/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
        headers: { 'content-type': 'application/json' },
      });
      expect(rest.status).toBe(503);
      await p.redis.config('SET', 'maxmemory', '0');
      await guard.read();
      expect(await failureOf(c.call('ModelInfer', infer))).toBeNull();
    }
  });
});

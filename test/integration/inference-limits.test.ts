// Every limit on every door: MODELQ_MAX_INFLIGHT, MODELQ_MAX_INFLIGHT_PER_MODEL, the Redis memory
// guard and MODELQ_RATE_LIMIT refuse an inference request alike on the REST fast path, REST through
// express, KServe :predict, gRPC ModelInfer and a ModelStreamInfer message: 429 or 503 with
// Retry-After over HTTP, RESOURCE_EXHAUSTED or UNAVAILABLE marked retryable over gRPC.
import { afterEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { backpressureFor } from '../../producer/inference/backpressure.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { freePort, PrivateRedis } from '../chaos/helpers.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { DOORS, throughDoor, type Outcome } from '../helpers/doors.ts';
import { inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform | undefined;
let server: RunningGrpcServer | undefined;
let c: InferenceClient | undefined;
let redis: PrivateRedis | undefined;
afterEach(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
  await redis?.stop();
  [p, server, c, redis] = [undefined, undefined, undefined, undefined];
});

async function start(env: Record<string, string>, workerQueues: string): Promise<{ p: TestPlatform; c: InferenceClient }> {
  p = await startPlatform({ env });
  await p.addWorker({ MODELQ_QUEUES: workerQueues });
  server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
  c = inferenceClient(`127.0.0.1:${server.port}`);
  expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
  return { p, c };
}

const row = [1, 2, 3, 4];
const allDoors = (p: TestPlatform, c: InferenceClient): Promise<Outcome[]> =>
  Promise.all(DOORS.map((door) => throughDoor(door, { url: p.url, grpc: c, model: 'm', row })));

/** Each door's refusal, as [door, status, retryable]. */
const refusals = (outcomes: Outcome[]) => outcomes.map((o) => [o.door, o.status, o.retryable]);
const expectRefused = (outcomes: Outcome[], http: number, grpc: string, message: RegExp) => {
  expect(refusals(outcomes)).toEqual(DOORS.map((d) => [d, d.startsWith('grpc') ? grpc : http, true]));
  for (const o of outcomes) expect(o.message).toMatch(message);
};

/** A request left waiting (nothing consumes `infer`): it holds its slot until the platform stops. */
const hold = (p: TestPlatform) => {
  void postJson(`${p.url}/v2/models/m/infer`, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: row }] }).catch(() => {});
  return until(() => backpressureFor(p.deps).gate.inFlight === 1, 'a request in flight');
};

describe('limits on every door', () => {
  it('MODELQ_MAX_INFLIGHT: 429 / RESOURCE_EXHAUSTED on every door while the producer holds its limit', async () => {
    const { p, c } = await start({ MODELQ_MAX_INFLIGHT: '1', MODELQ_INFER_TIMEOUT_MS: '60000' }, 'model');
    await hold(p);
    expectRefused(await allDoors(p, c), 429, 'RESOURCE_EXHAUSTED', /MODELQ_MAX_INFLIGHT=1\)/);
  });

  it('MODELQ_MAX_INFLIGHT_PER_MODEL: 429 / RESOURCE_EXHAUSTED on every door for the model at its limit', async () => {
    const { p, c } = await start({ MODELQ_MAX_INFLIGHT_PER_MODEL: '1', MODELQ_INFER_TIMEOUT_MS: '60000' }, 'model');
    await hold(p);
    expectRefused(await allDoors(p, c), 429, 'RESOURCE_EXHAUSTED', /MODELQ_MAX_INFLIGHT_PER_MODEL=1/);
  });

  it('Redis memory guard: 503 / UNAVAILABLE on every door while Redis is nearly full, answers once it drains', async () => {
    redis = new PrivateRedis(await freePort(), ['--maxmemory', '32mb']);
    await redis.start();
    const { p, c } = await start({ MODELQ_REDIS_URL: redis.url }, 'model,infer');
    const memory = backpressureFor(p.deps).memory;
    await memory.read();
    const fillers: string[] = [];
    while (memory.figures.used < memory.figures.max * 0.93) {
      fillers.push(`filler:${fillers.length}`);
      await p.redis.set(fillers.at(-1)!, Buffer.alloc(256 * 1024, 1));
      await memory.read();
    }
    expectRefused(await allDoors(p, c), 503, 'UNAVAILABLE', /Redis memory is \d+% full/);
    await p.redis.del(...fillers);
    await memory.read();
    expect((await allDoors(p, c)).map((o) => o.status)).toEqual(DOORS.map(() => 'ok'));
  });

  it('MODELQ_RATE_LIMIT: every door draws on one allowance, and each refuses past it with 429 / RESOURCE_EXHAUSTED', async () => {
    // The model's upload is a request of the same client: 1 + one per door.
    const { p, c } = await start({ MODELQ_RATE_LIMIT: `${1 + DOORS.length}/m` }, 'model,infer');
    const first: Outcome[] = [];
    for (const door of DOORS) first.push(await throughDoor(door, { url: p.url, grpc: c, model: 'm', row }));
    expect(first.map((o) => o.status)).toEqual(DOORS.map(() => 'ok'));
    expectRefused(await allDoors(p, c), 429, 'RESOURCE_EXHAUSTED', /rate limit of 6\/m exceeded/);
  });
});

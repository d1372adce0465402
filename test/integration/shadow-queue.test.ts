// The shadow queue is bounded: with every mirror slot busy and the queue full, a further mirror is
// dropped and counted (in the runner and in the pair's comparison in Redis), and never waited for;
// the queued mirrors still run once the running ones end. A mirror that no worker started before its
// deadline (no idle gap in time) counts as dropped too, not as the shadow's error.
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.ts';
import { deleteKeysWithPrefix } from '../../core/redis.ts';
import type { ServingTarget } from '../../core/registry.ts';
import { readComparison } from '../../core/shadow-compare.ts';
import type { WireRequest, WireResponse } from '../../core/jobs/online-wire.ts';
import { SHADOW_CONCURRENCY, ShadowRunner } from '../../producer/shadow.ts';
import { until } from '../helpers/platform.ts';

const redis = new Redis(process.env.MODELQ_REDIS_URL ?? 'redis://127.0.0.1:6379');
const prefix = `t-${Math.random().toString(36).slice(2, 10)}`;
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

const target = (version: number): ServingTarget => ({ model: { name: 'm', version } }) as unknown as ServingTarget;

describe('the shadow queue', () => {
  it('drops and counts mirrors past its bound, and runs the queued ones later', async () => {
    const held: ((r: WireResponse) => void)[] = [];
    const runs: number[] = [];
    const run = (_t: ServingTarget, _r: WireRequest) =>
      new Promise<WireResponse>((resolve) => {
        runs.push(1);
        held.push(resolve);
      });
    const max = 3;
    const runner = new ShadowRunner(run, redis, prefix, createLogger('shadow-test', 'silent'), 60_000, max);
    const primary = { ...target(1), shadow: { target: target(2), fraction: 1 } } as ServingTarget;
    const request = {} as WireRequest;
    for (let i = 0; i < SHADOW_CONCURRENCY + max + 5; i++) runner.mirror(primary, request, [], 1);
    expect(runs).toHaveLength(SHADOW_CONCURRENCY); // running
    expect(runner.inFlight).toBe(SHADOW_CONCURRENCY + max); // running + queued
    expect(runner.dropped).toBe(5);
    await runner.flush();
    expect((await readComparison(redis, prefix, 'm', 1, 2)).dropped).toBe(5);

    // Each ended run takes one queued mirror; a failed answer counts as the shadow's error.
    while (held.length) held.shift()!({ ok: false } as WireResponse);
    await new Promise((r) => setTimeout(r, 50));
    while (held.length) held.shift()!({ ok: false } as WireResponse);
    await new Promise((r) => setTimeout(r, 50));
    expect(runs).toHaveLength(SHADOW_CONCURRENCY + max);
    expect(runner.inFlight).toBe(0);
    await runner.flush();
    const c = await readComparison(redis, prefix, 'm', 1, 2);
    expect(c).toMatchObject({ dropped: 5, errors: SHADOW_CONCURRENCY + max, compared: 0 });
  });

  it('counts a mirror that no worker started before its deadline as dropped, not as the shadow erring', async () => {
    const notStarted: WireResponse = {
      ok: false,
      error: { code: 'timeout', message: 'the client stopped waiting before the request started', retryable: false },
    };
    const failed: WireResponse = { ok: false, error: { code: 'timeout', message: 'the model run (m@3) exceeded its time limit', retryable: false } };
    const answers = [notStarted, notStarted, failed];
    const runner = new ShadowRunner(async () => answers.shift()!, redis, prefix, createLogger('shadow-test', 'silent'), 60_000);
    const primary = { ...target(1), shadow: { target: target(3), fraction: 1 } } as ServingTarget;
    for (let i = 0; i < 3; i++) runner.mirror(primary, {} as WireRequest, [], 1);
    await until(() => runner.inFlight === 0, 'the mirrors answered', 5000);
    await runner.flush();
    expect(await readComparison(redis, prefix, 'm', 1, 3)).toMatchObject({ dropped: 2, errors: 1, compared: 0 });
  });
});

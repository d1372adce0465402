// The shadow lane on a worker (MODELQ_ONLINE_TRANSPORT=streams): mirrors wait on a stream of their
// own, which the worker reads a few entries at a time and runs at low priority in the engine. With a
// backlog of mirrors written together with a burst of primary requests, the primaries are answered
// first: at most the mirror entries already taken (SHADOW_ENTRIES) answer before the last primary.
// Order only (one engine thread, a model whose runs take a while), never times. A request through an
// alias with a shadow leaves its mirror on the shadow lane, never on the primaries' stream.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesTensor } from '../../core/jobs/infer.ts';
import { decodeReply, encodeJob, onlineStreamKey, shadowLane, type WireReply } from '../../core/jobs/online-wire.ts';
import { SHADOW_ENTRIES } from '../../workers/inference/online-stream.ts';
import { mlp, rows, SLOW_FEATURES, slowMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const body = { inputs: [{ name: 'input', shape: [1, SLOW_FEATURES], datatype: 'FP32', data: Array.from(rows(1, SLOW_FEATURES, 2)) }] };

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_ONLINE_TRANSPORT: 'streams', MODELQ_ENGINE_THREADS: '1' } });
  expect((await uploadModel(p.url, 'lane', slowMlp())).status).toBe(201);
  expect((await uploadModel(p.url, 'lane', mlp({ sizes: [SLOW_FEATURES, 2048, 2048, 2048, 2048, 10], seed: 8 }))).status).toBe(201);
  // Both versions loaded on the worker before any order is looked at.
  for (const v of [1, 2]) expect((await postJson(`${p.url}/v2/models/lane/versions/${v}/infer`, body)).status).toBe(200);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

describe('the shadow lane', () => {
  it('answers a burst of primary requests ahead of a backlog of mirrors', async () => {
    const [v1, v2] = await Promise.all([p.deps.registry.serving('lane@1'), p.deps.registry.serving('lane@2')]);
    const target = (m: typeof v1.model) => ({ name: m.name, version: m.version, sha256: m.sha256 });
    const channel = `${p.deps.prefix}:online-reply:lane-test`;
    const sub = new Redis(p.deps.cfg.MODELQ_REDIS_URL);
    const order: string[] = [];
    const replies: WireReply[] = [];
    sub.on('messageBuffer', (_c: Buffer, m: Buffer) => {
      const r = decodeReply(m);
      if (r.kind !== 'answer' && r.kind !== 'failed') return;
      replies.push(r);
      order.push(r.id);
    });
    await sub.subscribe(channel);
    try {
      const n = 10;
      const input = bytesTensor({ name: 'input', shape: [1, SLOW_FEATURES], datatype: 'FP32', data: body.inputs[0]!.data });
      const batching = { maxBatch: 1, maxDelayMs: 0, instances: 1, batchable: true };
      const frame = (id: string, model: typeof v1.model) => encodeJob({ id, reply: channel, model: target(model), batching, requests: [{ inputs: [input] }] });
      // Mirrors first, then primaries, written at once: both consumers see them together.
      const m = p.redis.multi();
      for (let i = 0; i < n; i++) m.xadd(onlineStreamKey(p.deps.prefix, shadowLane('infer')), '*', 'f', frame(`s${i}`, v2.model));
      for (let i = 0; i < n; i++) m.xadd(onlineStreamKey(p.deps.prefix, 'infer'), '*', 'f', frame(`p${i}`, v1.model));
      await m.exec();
      await until(() => order.length === 2 * n, 'every entry answered', 60_000);
      for (const r of replies) expect(r.kind).toBe('answer');
      const lastPrimary = Math.max(...Array.from({ length: n }, (_, i) => order.indexOf(`p${i}`)));
      const mirrorsAhead = order.slice(0, lastPrimary).filter((id) => id.startsWith('s')).length;
      expect(mirrorsAhead).toBeLessThanOrEqual(SHADOW_ENTRIES);
    } finally {
      sub.disconnect();
    }
  }, 120_000);

  it("leaves an alias's mirrors on the shadow lane, never on the primaries' stream", async () => {
    const put = await fetch(`${p.url}/v1/models/lane/aliases/mirrored`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ versions: [{ version: 1, weight: 100 }], shadow: { version: 2, fraction: 1 } }),
    });
    expect(put.ok).toBe(true);
    const shadowKey = onlineStreamKey(p.deps.prefix, shadowLane('infer'));
    const added = async () => {
      const info = (await p.redis.xinfo('STREAM', shadowKey)) as unknown[];
      return Number(info[info.indexOf('entries-added') + 1]);
    };
    const before = await added();
    await until(
      async () => (await postJson(`${p.url}/v2/models/lane/versions/mirrored/infer`, body)).status === 200 && (await added()) > before,
      'a mirror on the shadow lane',
      30_000,
    );
    const c = await until(
      async () => {
        const r = (await (await fetch(`${p.url}/v1/models/lane/comparisons/1/2`)).json()) as { compared: number };
        return r.compared > 0 ? r : null;
      },
      'the mirror compared',
      30_000,
    );
    expect(c.compared).toBeGreaterThan(0);
  }, 120_000);
});

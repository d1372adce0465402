// Rollouts on a real platform (evaluated every 300 ms): a good candidate reaches 100% by itself; a
// candidate that fails its requests is rolled back at the first evaluation that sees the errors, the
// audit naming the gate; killing the producer and the workers mid-rollout resumes it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord, Rollout } from '../../core/rollouts.ts';
import { failingModel } from '../fixtures/failing-model.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const ENV = { MODELQ_ROLLOUT_INTERVAL_MS: '300' };
type RolloutView = Rollout & { history: AuditRecord[] };

const put = (url: string, path: string, body: unknown) =>
  fetch(`${url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const getRollout = async (url: string, id: string) => (await (await fetch(`${url}/v1/models/ro/rollouts/${id}`)).json()) as RolloutView;
const aliasOf = async (url: string, alias: string) => {
  const m = (await (await fetch(`${url}/v1/models/ro`)).json()) as { aliases: Record<string, number>; routes?: Record<string, unknown> };
  return { version: m.aliases[alias], routed: m.routes?.[alias] !== undefined };
};
/** 20 requests on `alias` at once (random routing); their statuses. */
const burst = (url: string, alias: string) =>
  Promise.all(
    Array.from({ length: 20 }, () =>
      postJson(`${url}/v2/models/ro/versions/${alias}/infer`, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }).then(
        async (r) => {
          await r.arrayBuffer();
          return r.status;
        },
      ),
    ),
  );
/** Sends traffic until `done` holds. */
async function drive<T>(url: string, alias: string, done: () => Promise<T>, what: string): Promise<NonNullable<T>> {
  return until(
    async () => {
      await burst(url, alias);
      return done();
    },
    what,
    90_000,
  );
}
const start = async (url: string, body: object) => {
  const res = await postJson(`${url}/v1/models/ro/rollouts`, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as Rollout;
};

async function register(p: TestPlatform) {
  for (const m of [tinyMlp(1), tinyMlp(2), failingModel()]) expect((await uploadModel(p.url, 'ro', m)).status).toBe(201);
}

describe('a rollout', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({ workers: 1, env: ENV });
    await register(p);
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('with a good candidate reaches 100% by itself, every move audited with its figures', async () => {
    expect((await put(p.url, '/v1/models/ro/aliases/prod', { version: 1 })).status).toBe(200);
    const ro = await start(p.url, { alias: 'prod', candidate: 2, steps: [20, 50, 100], minRequests: 10, minDurationMs: 0 });
    expect(ro).toMatchObject({ status: 'running', baseline: 1, candidate: 2, step: 0 });
    expect(await aliasOf(p.url, 'prod')).toEqual({ version: 1, routed: true });
    // A rollout owns its alias while it runs.
    expect((await put(p.url, '/v1/models/ro/aliases/prod', { version: 1 })).status).toBe(409);
    const done = await drive(
      p.url,
      'prod',
      async () => ((await getRollout(p.url, ro.id)).status === 'running' ? null : getRollout(p.url, ro.id)),
      'the rollout to end',
    );
    expect(done.status).toBe('completed');
    expect(done.history.map((h) => [h.action, h.weight])).toEqual([
      ['start', 20],
      ['advance', 50],
      ['complete', 100],
    ]);
    for (const h of done.history.slice(1)) {
      expect(h.figures!.candidate.requests).toBeGreaterThanOrEqual(10);
      expect(h.figures!.candidate.errors).toBe(0);
    }
    expect(await aliasOf(p.url, 'prod')).toEqual({ version: 2, routed: false });
  });

  it('with a candidate that fails is rolled back at the first evaluation that sees errors, the audit naming the gate', async () => {
    expect((await put(p.url, '/v1/models/ro/aliases/canary', { version: 1 })).status).toBe(200);
    const ro = await start(p.url, { alias: 'canary', candidate: 3, steps: [50, 100], minRequests: 20, minDurationMs: 0, gates: { maxErrorRate: 0.01 } });
    const done = await drive(
      p.url,
      'canary',
      async () => ((await getRollout(p.url, ro.id)).status === 'running' ? null : getRollout(p.url, ro.id)),
      'the rollback',
    );
    expect(done.status).toBe('rolled_back');
    const last = done.history.at(-1)!;
    expect(last).toMatchObject({ action: 'rollback', gate: 'errorRate', weight: 0, evaluationsSeeingErrors: 1 });
    expect(last.figures!.candidate.errors).toBeGreaterThan(0);
    expect(last.reason).toMatch(/error rate/);
    expect(await aliasOf(p.url, 'canary')).toEqual({ version: 1, routed: false });
    // Back on the baseline (once the producer's serving cache, about a second, has let go): every request is answered.
    await until(async () => (await burst(p.url, 'canary')).every((s) => s === 200), 'answers from the baseline only');
  });

  it('can be paused, resumed and aborted; abort points the alias back at the baseline', async () => {
    expect((await put(p.url, '/v1/models/ro/aliases/manual', { version: 1 })).status).toBe(200);
    const ro = await start(p.url, { alias: 'manual', candidate: 2, steps: [10, 100], minRequests: 1_000_000, minDurationMs: 0 });
    const act = async (a: string) => {
      const res = await fetch(`${p.url}/v1/models/ro/rollouts/${ro.id}/${a}`, { method: 'POST' });
      expect(res.status).toBe(200);
      return ((await res.json()) as Rollout).status;
    };
    expect(await act('pause')).toBe('paused');
    expect(await act('resume')).toBe('running');
    expect(await act('abort')).toBe('aborted');
    expect((await fetch(`${p.url}/v1/models/ro/rollouts/${ro.id}/resume`, { method: 'POST' })).status).toBe(409);
    expect(await aliasOf(p.url, 'manual')).toEqual({ version: 1, routed: false });
    expect((await getRollout(p.url, ro.id)).history.map((h) => h.action)).toEqual(['start', 'pause', 'resume', 'abort']);
  });

  it('refuses a bad rollout', async () => {
    expect((await postJson(`${p.url}/v1/models/ro/rollouts`, { alias: 'prod', candidate: 2, steps: [50, 40] })).status).toBe(400);
    expect((await postJson(`${p.url}/v1/models/ro/rollouts`, { alias: 'prod', candidate: 9 })).status).toBe(404);
    expect((await postJson(`${p.url}/v1/models/ro/rollouts`, { alias: 'nope', candidate: 2 })).status).toBe(404);
  });
});

describe('a rollout whose producer and workers are killed', () => {
  let p2: TestPlatform | undefined;
  afterAll(async () => {
    await p2?.stop();
  });

  it('resumes where it was and finishes', async () => {
    const p = await startPlatform({ workers: 1, env: ENV });
    await register(p);
    expect((await put(p.url, '/v1/models/ro/aliases/prod', { version: 1 })).status).toBe(200);
    const ro = await start(p.url, { alias: 'prod', candidate: 2, steps: [10, 30, 60, 100], minRequests: 5, minDurationMs: 0 });
    await drive(p.url, 'prod', async () => (await getRollout(p.url, ro.id)).step >= 1, 'a first step');
    await p.crash();
    const crashedAt = Date.now();
    p2 = await startPlatform({ workers: 1, env: { ...ENV, MODELQ_PREFIX: p.env.MODELQ_PREFIX!, MODELQ_DATA_DIR: p.env.MODELQ_DATA_DIR! } });
    const before = await getRollout(p2.url, ro.id);
    expect(before.status).toBe('running');
    const done = await drive(
      p2.url,
      'prod',
      async () => ((await getRollout(p2!.url, ro.id)).status === 'running' ? null : getRollout(p2!.url, ro.id)),
      'the rollout to end',
    );
    expect(done.status).toBe('completed');
    expect(done.history.filter((h) => h.at > crashedAt).length).toBeGreaterThanOrEqual(1);
    expect(done.history.map((h) => h.weight)).toEqual([10, 30, 60, 100]);
    expect(await aliasOf(p2.url, 'prod')).toEqual({ version: 2, routed: false });
  });
});

// Shadow traffic: an alias whose shadow gets every request answers exactly as its primary alone; the
// mirrored requests show in the comparison (a shadow with other weights disagrees within tolerance, a
// failing shadow counts errors); a rollout with an agreement gate compares through the same mirrors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directRun, tinyMlp } from '../fixtures/models.ts';
import { failingModel } from '../fixtures/failing-model.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let expected: number[];
const X = [0.5, -1, 2, 0.25];
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_ROLLOUT_INTERVAL_MS: '300' } });
  for (const m of [tinyMlp(1), tinyMlp(2), failingModel()]) expect((await uploadModel(p.url, 'sh', m)).status).toBe(201);
  expected = [...(await directRun(tinyMlp(1), { input: { data: Float32Array.from(X), dims: [1, 4] } })).output!].map((x) => Math.fround(x));
});
afterAll(async () => {
  await p?.stop();
});

const put = (alias: string, body: unknown) =>
  fetch(`${p.url}/v1/models/sh/aliases/${alias}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const comparison = async (a: number, b: number) => (await (await fetch(`${p.url}/v1/models/sh/comparisons/${a}/${b}`)).json()) as Record<string, number>;
async function sendAll(alias: string, n: number) {
  for (let i = 0; i < n; i += 10) {
    const answers = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const r = await postJson(`${p.url}/v2/models/sh/versions/${alias}/infer`, { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: X }] });
        return {
          status: r.status,
          header: r.headers.get('x-modelq-model-version'),
          body: (await r.json()) as { model_version: string; outputs: { data: number[] }[] },
        };
      }),
    );
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.header).toBe('1');
      expect(a.body.model_version).toBe('1');
      expect(a.body.outputs[0]!.data.map((x) => Math.fround(x))).toEqual(expected);
    }
  }
}

describe('a shadow at 100%', () => {
  it('never changes an answer, and its disagreement shows in the comparison', async () => {
    expect((await put('mirror', { versions: [{ version: 1, weight: 100 }], shadow: { version: 2, fraction: 1 } })).status).toBe(200);
    await sendAll('mirror', 40);
    const c = await until(async () => {
      const c = await comparison(1, 2);
      return c.compared === 40 ? c : null;
    }, 'the 40 comparisons');
    expect(c.errors).toBe(0);
    expect(c.withinTolerance).toBe(0); // other weights: the outputs differ
    expect(c.shadowP50Ms).toBeGreaterThan(0);
  });

  it('that fails counts errors, and the answers stay the primary’s', async () => {
    expect((await put('broken', { versions: [{ version: 1, weight: 100 }], shadow: { version: 3, fraction: 1 } })).status).toBe(200);
    await sendAll('broken', 20);
    const c = await until(async () => {
      const c = await comparison(1, 3);
      return c.errors === 20 ? c : null;
    }, 'the 20 shadow errors');
    expect(c.compared).toBe(0);
  });
});

describe('a rollout with an agreement gate', () => {
  it('rolls back a candidate that disagrees with the baseline, naming the gate', async () => {
    expect((await put('gated', { version: 1 })).status).toBe(200);
    const res = await postJson(`${p.url}/v1/models/sh/rollouts`, {
      alias: 'gated',
      candidate: 2,
      steps: [50, 100],
      minRequests: 10,
      minDurationMs: 0,
      gates: { maxErrorRate: 0.01, minAgreement: 1 },
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const done = await until(
      async () => {
        await Promise.all(
          Array.from({ length: 10 }, () =>
            postJson(`${p.url}/v2/models/sh/versions/gated/infer`, {
              inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: [X, [3, 1, -2, 0], [-1, -1, 4, 2]] }],
            }).then((r) => r.arrayBuffer()),
          ),
        );
        const ro = (await (await fetch(`${p.url}/v1/models/sh/rollouts/${id}`)).json()) as {
          status: string;
          history: { action: string; gate?: string; figures?: { compared: number } }[];
        };
        return ro.status === 'running' ? null : ro;
      },
      'the rollout to end',
      60_000,
    );
    // The two seeds' MLPs disagree on the top class of at least one of these fixed rows (fixed weights and inputs: deterministic).
    expect(done.status).toBe('rolled_back');
    expect(done.history.at(-1)).toMatchObject({ action: 'rollback', gate: 'agreement' });
    expect(done.history.at(-1)!.figures!.compared).toBeGreaterThanOrEqual(10);
  });
});

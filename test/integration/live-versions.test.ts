// An alias's versions side by side (GET /v1/models/{name}/aliases/{alias}/live): each split
// version's requests, errors, latency and output distribution (top-1 class counts) with its output
// drift from the primary's, and the shadow's agreement and output drift from the answers it was
// compared with; every figure checked against what the test computed from the answers it got and the
// shadow model's direct run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directRun, rows, tinyMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_ROLLOUT_INTERVAL_MS: '1000' } });
  for (const seed of [1, 2, 3]) expect((await uploadModel(p.url, 'lv', tinyMlp(seed))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const argmax = (v: number[]) => v.reduce((b, x, j) => (x > v[b]! ? j : b), 0);
const histogram = (xs: number[]) => xs.reduce<Record<string, number>>((h, x) => ({ ...h, [x]: (h[x] ?? 0) + 1 }), {});
function js(a: Record<string, number>, b: Record<string, number>): number {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  const ta = Object.values(a).reduce((s, x) => s + x, 0);
  const tb = Object.values(b).reduce((s, x) => s + x, 0);
  let d = 0;
  for (const k of keys) {
    const pa = (a[k] ?? 0) / ta;
    const pb = (b[k] ?? 0) / tb;
    const m = (pa + pb) / 2;
    if (pa > 0) d += 0.5 * pa * Math.log2(pa / m);
    if (pb > 0) d += 0.5 * pb * Math.log2(pb / m);
  }
  return Math.sqrt(d);
}

type Version = {
  version: number;
  role: string;
  weight: number;
  requests: number;
  errors: number;
  p50Ms: number | null;
  classes: Record<string, number>;
  outputDrift: number | null;
  agreement: number | null;
};

describe('the live comparison of an alias', () => {
  it("shows each version's figures and output drift side by side, the shadow's too", async () => {
    const put = await fetch(`${p.url}/v1/models/lv/aliases/prod`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        versions: [
          { version: 1, weight: 60 },
          { version: 2, weight: 40 },
        ],
        shadow: { version: 3, fraction: 1 },
      }),
    });
    expect(put.status).toBe(200);
    const N = 120;
    const x = rows(N, 4, 5);
    const answers: { version: number; cls: number; row: number }[] = [];
    for (let i = 0; i < N; i += 12) {
      const got = await Promise.all(
        Array.from({ length: 12 }, async (_, j) => {
          const r = i + j;
          const res = await postJson(`${p.url}/v2/models/lv/versions/prod/infer`, {
            id: `req-${r}`,
            inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: Array.from(x.subarray(r * 4, r * 4 + 4)) }],
          });
          expect(res.status).toBe(200);
          const b = (await res.json()) as { model_version: string; outputs: { data: number[] }[] };
          return { version: Number(b.model_version), cls: argmax(b.outputs[0]!.data), row: r };
        }),
      );
      answers.push(...got);
    }
    const of = (v: number) => answers.filter((a) => a.version === v);
    expect(of(1).length).toBeGreaterThan(0);
    expect(of(2).length).toBeGreaterThan(0);
    const shadowOut = (await directRun(tinyMlp(3), { input: { data: x, dims: [N, 4] } })).output!;
    const shadowCls = (r: number) => argmax(Array.from(shadowOut.subarray(r * 3, r * 3 + 3)));

    const live = await until(
      async () => {
        const l = (await (await fetch(`${p.url}/v1/models/lv/aliases/prod/live`)).json()) as { versions: Version[]; shadow: Record<string, unknown> };
        const total = l.versions.filter((v) => v.role !== 'shadow').reduce((s, v) => s + v.requests, 0);
        return total === N && l.shadow?.compared === of(1).length ? l : null;
      },
      'the figures and comparisons of every request',
      60_000,
    );
    const byVersion = new Map(live.versions.map((v) => [v.version, v]));
    for (const v of [1, 2]) {
      const f = byVersion.get(v)!;
      expect(f).toMatchObject({ role: v === 1 ? 'primary' : 'canary', weight: v === 1 ? 60 : 40, requests: of(v).length, errors: 0 });
      expect(f.p50Ms).toBeGreaterThan(0);
      expect(f.classes).toEqual(histogram(of(v).map((a) => a.cls)));
    }
    expect(byVersion.get(1)!.outputDrift).toBeNull();
    expect(byVersion.get(2)!.outputDrift).toBeCloseTo(js(histogram(of(1).map((a) => a.cls)), histogram(of(2).map((a) => a.cls))), 9);

    // The shadow, compared with the primary's (version 1's) answers.
    const primaryRows = of(1);
    const agreed = primaryRows.filter((a) => a.cls === shadowCls(a.row)).length;
    const shadowHist = histogram(primaryRows.map((a) => shadowCls(a.row)));
    const s = byVersion.get(3)!;
    expect(s).toMatchObject({ role: 'shadow', requests: primaryRows.length, errors: 0, classes: shadowHist });
    expect(s.agreement).toBeCloseTo(agreed / primaryRows.length, 9);
    expect(s.outputDrift).toBeCloseTo(js(histogram(primaryRows.map((a) => a.cls)), shadowHist), 9);
    expect(live.shadow).toMatchObject({ version: 3, fraction: 1, compared: primaryRows.length, dropped: 0 });

    expect((await fetch(`${p.url}/v1/models/lv/aliases/nope/live`)).status).toBe(404);
  });
});

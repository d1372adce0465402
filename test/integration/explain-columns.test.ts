// Explanations by column (#24 item 4) through the real /v2 path: a column-input model (FP32 [n,1]
// numbers imputed in the graph, a BYTES [n,1] category through LabelEncoder -> OneHot) gets one
// Shapley player per column, named by column; the attributions sum to the prediction minus the base
// (within 1e-4), against one row of missing values by default (what the graph imputes) or against
// background rows set for the version.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { columnModel, columnProbs } from '../fixtures/column-model-linear.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = { 'admin-key-0123456789': { tenant: 'acme', scopes: ['admin'] } };
const json = { 'content-type': 'application/json', authorization: 'Bearer admin-key-0123456789' };

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS) } });
  const up = await fetch(`${p.url}/v1/models/cols/versions`, {
    method: 'POST',
    body: Buffer.from(columnModel()),
    headers: { ...json, 'content-type': 'application/octet-stream' },
  });
  expect(up.status, await up.clone().text()).toBe(201);
}, 60_000);
afterAll(async () => {
  await p?.stop();
});

const AGE = [25, 61, 40];
const INCOME = [1.5, 4, 7];
const COLOR = ['blue', 'red', 'purple']; // purple: unseen, all zeros
const explain = (parameters: Record<string, unknown> = {}) =>
  fetch(`${p.url}/v2/models/cols/infer`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({
      parameters: { explain: true, ...parameters },
      inputs: [
        { name: 'age', datatype: 'FP32', shape: [3, 1], data: AGE },
        { name: 'income', datatype: 'FP32', shape: [3, 1], data: INCOME },
        { name: 'color', datatype: 'BYTES', shape: [3, 1], data: COLOR },
      ],
    }),
  });

type Answer = { outputs: { name: string; shape: number[]; data: number[] }[]; parameters: Record<string, unknown> };
const out = (b: Answer, name: string) => b.outputs.find((o) => o.name === name)!;

function checkEfficiency(body: Answer) {
  const probs = out(body, 'probabilities').data;
  const attr = out(body, 'attributions');
  expect(attr.shape).toEqual([3, 3]);
  const base = body.parameters.explain_base as number[];
  const classes = body.parameters.explain_class as number[];
  for (let n = 0; n < 3; n++) {
    const c = classes[n]!;
    expect(probs[n * 3 + c]).toBeCloseTo(columnProbs(AGE[n]!, INCOME[n]!, COLOR[n]!)[c]!, 5);
    const sum = attr.data.slice(n * 3, n * 3 + 3).reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - (probs[n * 3 + c]! - base[n]!))).toBeLessThan(1e-4);
  }
}

describe('explanations by column', () => {
  it('names one player per column and sums to prediction minus base against a row of missing values', async () => {
    const res = await explain({ explainSamples: 6 });
    const body = (await res.json()) as Answer;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.parameters).toMatchObject({ explain_method: 'shapley', explain_columns: ['age', 'income', 'color'], explain_output: 'probabilities' });
    checkEfficiency(body);
    // The base: the graph's own imputation of NaN and "" (medians, all-zero one-hot).
    const base = body.parameters.explain_base as number[];
    const classes = body.parameters.explain_class as number[];
    classes.forEach((c, n) => expect(base[n]).toBeCloseTo(columnProbs(NaN, NaN, '')[c]!, 5));
    // An unseen category is the same as missing: color gets exactly nothing in row 2.
    expect(Math.abs(out(body, 'attributions').data[2 * 3 + 2]!)).toBeLessThan(1e-6);
    // The same request, the same numbers.
    const again = (await (await explain({ explainSamples: 6 })).json()) as Answer;
    expect(out(again, 'attributions').data).toEqual(out(body, 'attributions').data);
  });

  it('explains against the background rows set for the version', async () => {
    const bg: [number, number, string][] = [
      [30, 2, 'red'],
      [50, 5, ''],
      [45, 3.5, 'green'],
    ];
    // by position, by name, missing as null or absent
    const rows = [bg[0], { age: 50, income: 5, color: null }, { age: 45, income: 3.5, color: 'green' }];
    const put = await fetch(`${p.url}/v1/models/cols/versions/1/background`, { method: 'PUT', headers: json, body: JSON.stringify({ rows }) });
    expect(put.status, await put.clone().text()).toBe(200);
    const res = await explain({ explainSamples: 4, explainClass: 1 });
    const body = (await res.json()) as Answer;
    expect(res.status, JSON.stringify(body)).toBe(200);
    checkEfficiency(body);
    // base: the mean over the background rows of class 1
    const mean = bg.reduce((s, [a, i, c]) => s + columnProbs(a, i, c)[1]!, 0) / bg.length;
    const bad = await fetch(`${p.url}/v1/models/cols/versions/1/background`, {
      method: 'PUT',
      headers: json,
      body: JSON.stringify({ rows: [{ age: 'old' }] }),
    });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.message).toMatch(/rows\[0\] column "age" must be a number or null/);
    expect((body.parameters.explain_base as number[])[0]).toBeCloseTo(mean, 5);
  });

  it('explains an explained batch by column: every line gets attributions in column order that sum to prediction minus base', async () => {
    const body = AGE.map((a, n) => JSON.stringify({ age: [a], income: [INCOME[n]], color: [COLOR[n]] })).join('\n');
    const res = await fetch(`${p.url}/v1/batches?model=cols&explain=true&explainSamples=4`, {
      method: 'POST',
      body,
      headers: { ...json, 'content-type': 'application/x-ndjson' },
    });
    const accepted = await res.json();
    expect(res.status, JSON.stringify(accepted)).toBe(202);
    const done = await until(async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${accepted.id}`, { headers: json })).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    }, 'batch to end');
    expect(done).toMatchObject({ status: 'completed', requestCounts: { completed: 3, failed: 0 } });
    const lines = (await (await fetch(`${p.url}/v1/batches/${accepted.id}/output`, { headers: json })).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { outputs: Record<string, number[]> });
    lines.forEach((o, n) => {
      const a = o.outputs.attributions!;
      expect(a).toHaveLength(3);
      const c = o.outputs.explain_class![0]!;
      expect(o.outputs.probabilities![c]).toBeCloseTo(columnProbs(AGE[n]!, INCOME[n]!, COLOR[n]!)[c]!, 5);
      expect(Math.abs(a.reduce((s, v) => s + v, 0) - (o.outputs.probabilities![c]! - o.outputs.explain_base![0]!))).toBeLessThan(1e-4);
    });
  });
});

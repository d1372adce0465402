// Dynamic batching: concurrent single-row requests share onnxruntime runs (read from the engine's
// counters in /metrics), answers equal single-request results, fixed-batch models still work, and a
// bad request inside a batch fails alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, gatherModel, rows } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 32;
const model = buildMlp({ sizes: [F, 256, 256, 8], seed: 21 });

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_ENGINE_THREADS: '2' } });
});
afterAll(async () => {
  await p?.stop();
});

const infer = (name: string, body: unknown) => postJson(`${p.url}/v2/models/${name}/infer`, body);
const setConfig = (name: string, cfg: unknown) =>
  fetch(`${p.url}/v1/models/${name}/config`, { method: 'PUT', body: JSON.stringify(cfg), headers: { 'content-type': 'application/json' } });

/** Engine counters for a model label (name@version), summed over workers, from /metrics. */
async function counters(label: string): Promise<{ runs: number; requests: number }> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const sum = (metric: string) =>
    [...text.matchAll(new RegExp(`^${metric}\\{worker="[^"]+",model="${label.replace('.', '\\.')}"\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
  return { runs: sum('modelq_engine_model_runs_total'), requests: sum('modelq_engine_model_requests_total') };
}

describe('dynamic batching', () => {
  it('serves 64 concurrent single-row requests with far fewer onnxruntime runs, each answer exact', async () => {
    expect((await uploadModel(p.url, 'mlp', model)).status).toBe(201);
    // A window long enough for requests that the producer takes in one after another to meet.
    expect((await setConfig('mlp', { maxBatch: 64, maxDelayMs: 20, instances: 2 })).status).toBe(200);
    const x = rows(64, F, 9);
    const single = (i: number) => ({ inputs: [{ name: 'input', shape: [1, F], datatype: 'FP32', data: Array.from(x.subarray(i * F, (i + 1) * F)) }] });
    expect((await infer('mlp', single(0))).status).toBe(200); // warm the session
    const base = await until(async () => {
      const c = await counters('mlp@1');
      return c.requests >= 1 ? c : null;
    }, 'warm-up request counted');

    const answers = await Promise.all(Array.from({ length: 64 }, (_, i) => infer('mlp', single(i))));
    expect(answers.map((a) => a.status).every((s) => s === 200)).toBe(true);
    const bodies = await Promise.all(answers.map((a) => a.json()));
    const expected = (await directRun(model, { input: { data: x, dims: [64, F] } })).output!;
    bodies.forEach((b, i) => {
      expect(b.outputs[0].shape).toEqual([1, 8]);
      b.outputs[0].data.forEach((v: number, j: number) => expect(Math.abs(v - expected[i * 8 + j]!)).toBeLessThan(1e-5));
    });

    const after = await until(async () => {
      const c = await counters('mlp@1');
      return c.requests - base.requests >= 64 ? c : null;
    }, '64 requests counted');
    const runs = after.runs - base.runs;
    expect(after.requests - base.requests).toBe(64);
    expect(runs).toBeGreaterThan(0);
    expect(runs).toBeLessThanOrEqual(16); // at least 4 requests per run on average
    const text = await (await fetch(`${p.url}/metrics`)).text();
    expect(text).toMatch(/modelq_engine_batch_size_bucket\{worker="[^"]+",le="64"\} \d+/);
    expect(text).toMatch(/modelq_engine_model_queue_wait_seconds_total\{worker="[^"]+",model="mlp@1"\}/);
  });

  it('applies a changed config to the next batch without a restart', async () => {
    const put = await setConfig('mlp', { maxBatch: 1, maxDelayMs: 0, instances: 1 });
    expect(put.status).toBe(200);
    expect(await (await fetch(`${p.url}/v1/models/mlp/config`)).json()).toEqual({ maxBatch: 1, maxDelayMs: 0, instances: 1 });
    const base = await counters('mlp@1');
    const req = { inputs: [{ name: 'input', shape: [1, F], datatype: 'FP32', data: Array(F).fill(0.25) }] };
    const answers = await Promise.all(Array.from({ length: 16 }, () => infer('mlp', req)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const after = await until(async () => {
      const c = await counters('mlp@1');
      return c.requests - base.requests >= 16 ? c : null;
    }, '16 requests counted');
    expect(after.runs - base.runs).toBe(16);
  });

  it('rejects bad config with a 400 naming the field', async () => {
    const res = await setConfig('mlp', { maxBatch: 0 });
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/maxBatch/);
    expect((await setConfig('nosuch', { maxBatch: 8 })).status).toBe(404);
  });

  it('runs a model without a dynamic batch dimension one request at a time, correctly', async () => {
    const fixed = buildMlp({ sizes: [F, 16, 4], seed: 5, batch: 1 });
    expect((await uploadModel(p.url, 'fixed', fixed)).status).toBe(201);
    const x = rows(8, F, 3);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        infer('fixed', { inputs: [{ name: 'input', shape: [1, F], datatype: 'FP32', data: Array.from(x.subarray(i * F, (i + 1) * F)) }] }),
      ),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const bodies = await Promise.all(answers.map((a) => a.json()));
    for (let i = 0; i < 8; i++) {
      const want = (await directRun(fixed, { input: { data: x.slice(i * F, (i + 1) * F), dims: [1, F] } })).output!;
      bodies[i].outputs[0].data.forEach((v: number, j: number) => expect(Math.abs(v - want[j]!)).toBeLessThan(1e-5));
    }
    const c = await until(async () => {
      const k = await counters('fixed@1');
      return k.requests >= 8 ? k : null;
    }, 'fixed-model requests counted');
    expect(c.runs).toBe(c.requests);
  });

  it('fails a bad request inside a batch alone; the others succeed', async () => {
    expect((await uploadModel(p.url, 'gather', gatherModel())).status).toBe(201);
    expect((await setConfig('gather', { maxBatch: 64, maxDelayMs: 20, instances: 1 })).status).toBe(200);
    const req = (i: number) => ({ inputs: [{ name: 'idx', shape: [1, 1], datatype: 'INT64', data: [i] }] });
    const ids = [1, 2, 3, 99, 4, 5, 6, 7]; // 99 is out of the table's range: only onnxruntime can tell
    const answers = await Promise.all(ids.map((i) => infer('gather', req(i))));
    const statuses = answers.map((a) => a.status);
    expect(statuses).toEqual([200, 200, 200, 400, 200, 200, 200, 200]);
    const bodies = await Promise.all(answers.map((a) => a.json()));
    expect(bodies[3].error).toMatch(/idx|indices|out of/i);
    expect(bodies[0].outputs[0]).toMatchObject({ name: 'emb', shape: [1, 1, 4] });
    expect(bodies[0].outputs[0].data.map((v: number) => Math.round(v * 10))).toEqual([4, 5, 6, 7]);
  });
});

// Compression jobs end to end: a new version with lineage and a before/after report, for the MLP
// 256-1024-1024-10 and a CNN exported by "another tool"; every produced model passes the checker.
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { convNet } from '../fixtures/models.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let events: QueueEvents;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  expect((await uploadModel(p.url, 'mlp', buildMlp({ sizes: [256, 1024, 1024, 10], seed: 8 }))).status).toBe(201);
  expect((await uploadModel(p.url, 'cnn', convNet())).status).toBe(201);
});
afterAll(async () => {
  await events?.close();
  await p?.stop();
});

async function compress(body: object) {
  // Speed is not what these tests are about: a small model's int8 or pruned form is as fast as its parent within noise, which the speed gate may read as slower.
  const res = await postJson(`${p.url}/v1/jobs/compress`, { allowSlower: true, ...body });
  expect(res.status).toBe(202);
  const { id } = await res.json();
  const job = (await p.deps.queues.queue('compress').getJob(id))!;
  const result = await job.waitUntilFinished(events, 120_000);
  // The same result through the jobs resource.
  const view = await (await fetch(`${p.url}/v1/jobs/${id}`)).json();
  expect(view).toMatchObject({ id, kind: 'compress', state: 'completed', result: { model: result.model } });
  return result;
}
const download = async (name: string, v: number) => new Uint8Array(await (await fetch(`${p.url}/v1/models/${name}/versions/${v}/onnx`)).arrayBuffer());

describe('compression jobs', () => {
  it('quantize-int8: at most 0.3x the bytes, >= 97% argmax agreement, lineage to the parent', async () => {
    const r = await compress({ model: 'mlp@1', method: 'quantize-int8', registerAs: 'mlp-int8' });
    expect(r.model).toEqual({ name: 'mlp-int8', version: 1 });
    expect(r.report.bytesAfter / r.report.bytesBefore).toBeLessThanOrEqual(0.3);
    expect(r.report.argmaxAgreement).toBeGreaterThanOrEqual(0.97);
    expect(r.report.rowsPerSecondBefore).toBeGreaterThan(0);
    expect(r.report.rowsPerSecondAfter).toBeGreaterThan(0);
    expect(r.report.batchSize).toBe(32);
    const v = await (await fetch(`${p.url}/v1/models/mlp-int8/versions/1`)).json();
    expect(v.lineage).toMatchObject({ parent: { name: 'mlp', version: 1 }, method: 'quantize-int8', options: { perChannel: false } });
    expect(await onnxCheck(await download('mlp-int8', 1))).toBeNull();
    const infer = await postJson(`${p.url}/v2/models/mlp-int8/infer`, {
      inputs: [{ name: 'input', shape: [1, 256], datatype: 'FP32', data: Array(256).fill(0.1) }],
    });
    expect(infer.status).toBe(200);
  });

  it('fp16: outputs within 1e-2; a new version of the same name moves latest', async () => {
    const r = await compress({ model: 'mlp@1', method: 'fp16' });
    expect(r.model).toEqual({ name: 'mlp', version: 2 });
    expect(r.report.maxAbsDiff).toBeLessThan(1e-2);
    expect((await (await fetch(`${p.url}/v1/models/mlp`)).json()).aliases.latest).toBe(2);
    expect(await onnxCheck(await download('mlp', 2))).toBeNull();
  });

  it('structured pruning: fewer parameters and a working model', async () => {
    const r = await compress({ model: 'mlp@1', method: 'prune', options: { structured: true, keep: 0.5 }, registerAs: 'mlp-pruned' });
    expect(r.report.details.paramsAfter).toBeLessThan(r.report.details.paramsBefore);
    expect(r.report.bytesAfter).toBeLessThan(r.report.bytesBefore * 0.6);
    expect(await onnxCheck(await download('mlp-pruned', 1))).toBeNull();
  });

  it('quantize-int8 on a CNN from another tool: both forms measured (ConvInteger, Conv kept float), the faster kept', async () => {
    const r = await compress({ model: 'cnn', method: 'quantize-int8', registerAs: 'cnn-int8' });
    const forms = r.report.details.forms as { form: string; rowsPerSecond: number; withinTolerance: boolean }[];
    expect(forms.map((f) => f.form)).toEqual(['dynamic', 'dynamic, Conv kept float']);
    const acceptable = forms.filter((f) => f.withinTolerance);
    expect(r.report.details.form).toBe(acceptable.sort((a, b) => b.rowsPerSecond - a.rowsPerSecond)[0]!.form);
    const ops = (r.report.details.quantized as { op: string }[]).map((q) => q.op);
    expect(ops).toContain('Gemm');
    expect(ops.includes('Conv')).toBe(r.report.details.form === 'dynamic');
    expect(r.report.sampleShape).toEqual({ image: [32, 3, 16, 16] });
    expect(r.report.argmaxAgreement).toBeGreaterThanOrEqual(0.97);
    expect(r.report.verdict).toMatchObject({ data: 'generated', rows: 256, passed: true });
    expect(await onnxCheck(await download('cnn-int8', 1))).toBeNull();
  });

  it('fails a job that cannot compress, saying why, and registers nothing', async () => {
    expect((await uploadModel(p.url, 'pruned-twice', buildMlp({ sizes: [4, 3], seed: 1 }))).status).toBe(201);
    await expect(compress({ model: 'pruned-twice', method: 'prune', options: { structured: true, keep: 0.5 } })).rejects.toThrow(/nothing to prune/);
    expect((await (await fetch(`${p.url}/v1/models/pruned-twice`)).json()).versions).toHaveLength(1);
  });

  it('rejects bad requests with 4xx naming the field', async () => {
    const bad = async (body: unknown, status: number, msg: RegExp) => {
      const res = await postJson(`${p.url}/v1/jobs/compress`, body);
      expect(res.status).toBe(status);
      expect((await res.json()).error.message).toMatch(msg);
    };
    await bad({ model: 'mlp', method: 'zip' }, 400, /method/);
    await bad({ model: 'mlp', method: 'prune', options: { sparsity: 2 } }, 400, /options/);
    await bad({ model: 'nosuch', method: 'fp16' }, 404, /not found/);
    await bad({ model: 'mlp', method: 'fp16', registerAs: 'Bad Name' }, 400, /registerAs/);
  });
});

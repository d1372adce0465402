// Compression jobs on models real exporters wrote (test/fixtures/exported): int8 with its forms
// measured, static QDQ calibrated on the request's token ids, fp16 of a model with int64 inputs,
// pruning of a CNN, and a refusal that names the node. Every result passes the official checker.
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { CORPUS, corpusBytes } from '../fixtures/exported/corpus.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let events: QueueEvents;
const MODELS = ['resnet_op9', 'lstm_text_op11', 'transformer_op13', 'upsample_op9'];
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  for (const name of MODELS) {
    expect(CORPUS.some((c) => c.name === name)).toBe(true);
    expect((await uploadModel(p.url, name.replace(/_/g, '-'), corpusBytes(name))).status).toBe(201);
  }
});
afterAll(async () => {
  await events?.close();
  await p?.stop();
});

async function submit(body: object) {
  // Speed is not what these tests are about: a small model's int8 or pruned form is as fast as its parent within noise, which the speed gate may read as slower.
  const res = await postJson(`${p.url}/v1/jobs/compress`, { allowSlower: true, ...body });
  expect(res.status).toBe(202);
  const { id } = await res.json();
  return (await p.deps.queues.queue('compress').getJob(id))!;
}
async function compress(body: object) {
  return (await submit(body)).waitUntilFinished(events, 180_000);
}
const download = async (name: string, v: number) => new Uint8Array(await (await fetch(`${p.url}/v1/models/${name}/versions/${v}/onnx`)).arrayBuffer());

describe('compression of exported models', () => {
  it('quantize-int8 on a ResNet exported at opset 9: both forms measured, the fastest agreeing one kept, a valid smaller model', async () => {
    const r = await compress({ model: 'resnet-op9', method: 'quantize-int8', registerAs: 'resnet-int8' });
    const forms = r.report.details.forms as { form: string; rowsPerSecond: number; withinTolerance: boolean }[];
    expect(forms.map((f) => f.form)).toEqual(['dynamic', 'dynamic, Conv kept float']);
    const ok = forms.filter((f) => f.withinTolerance).sort((a, b) => b.rowsPerSecond - a.rowsPerSecond);
    expect(r.report.details.form).toBe(ok[0]!.form);
    // Judged on 256 generated rows against int8's default bar.
    expect(r.report.verdict).toMatchObject({ data: 'generated', rows: 256, passed: true, tolerance: { cosine: 0.99, top1: 0.97 } });
    expect(r.report.cosine).toBeGreaterThanOrEqual(0.99);
    expect(r.report.sampleInputs).toEqual({ image: 'seeded normal values (mean 0, sd 1)' });
    expect(r.report.rowsPerSecondBatch1After).toBeGreaterThan(0);
    expect(await onnxCheck(await download('resnet-int8', 1))).toBeNull();
  });

  it('quantize-int8-static on an LSTM text classifier, calibrated on token ids the request supplies', async () => {
    const ids = (seed: number) => Array.from({ length: 4 * 12 }, (_, i) => (i * 37 + seed * 101) % 2000);
    const calibration = [1, 2, 3].map((s) => [{ name: 'tokens', datatype: 'INT64', shape: [4, 12], data: ids(s) }]);
    const r = await compress({ model: 'lstm-text-op11', method: 'quantize-int8-static', options: { calibration }, registerAs: 'lstm-int8' });
    const staticForm = (r.report.details.forms as { form: string }[]).map((f) => f.form);
    expect(staticForm).toContain('static QDQ');
    expect(r.report.details.calibration).toEqual({ source: 'request', runs: 3, rows: 12 });
    expect(r.report.sampleInputs.tokens).toMatch(/token ids in \[0, 2000\)/);
    expect(r.report.bytesAfter / r.report.bytesBefore).toBeLessThan(0.6);
    expect(r.report.cosine >= 0.98 || r.report.argmaxAgreement >= 0.9).toBe(true);
    const v = await (await fetch(`${p.url}/v1/models/lstm-int8/versions/1`)).json();
    expect(v.lineage.options.calibration).toBe('3 request-supplied feeds');
    expect(await onnxCheck(await download('lstm-int8', 1))).toBeNull();
  });

  it('fp16 of a Transformer with int64 token inputs: loads, agrees, answers over /v2', async () => {
    const r = await compress({ model: 'transformer-op13', method: 'fp16', registerAs: 'transformer-fp16' });
    expect(r.report.cosine).toBeGreaterThanOrEqual(0.99);
    expect(r.report.bytesAfter / r.report.bytesBefore).toBeLessThan(0.6);
    expect(await onnxCheck(await download('transformer-fp16', 1))).toBeNull();
    const tokens = Array.from({ length: 32 }, (_, i) => (i * 61) % 2000);
    const infer = await postJson(`${p.url}/v2/models/transformer-fp16/infer`, {
      inputs: [{ name: 'tokens', shape: [1, 32], datatype: 'INT64', data: tokens }],
    });
    expect(infer.status).toBe(200);
    expect((await infer.json()).outputs[0].datatype).toBe('FP32');
  });

  it('structured pruning of a model with Upsample, Pad and Slice at opset 9: convolution channels go', async () => {
    const r = await compress({ model: 'upsample-op9', method: 'prune', options: { structured: true, keep: 0.5 }, registerAs: 'upsample-pruned' });
    expect(r.report.details.layers).toBeGreaterThan(0);
    expect(r.report.details.paramsAfter).toBeLessThan(r.report.details.paramsBefore);
    expect(await onnxCheck(await download('upsample-pruned', 1))).toBeNull();
  });

  it('a compression that cannot apply fails naming the reason, and registers nothing', async () => {
    // Job errors cross the queue as JSON { code, message }.
    const failure = async (body: object) => {
      const err = await (await submit(body)).waitUntilFinished(events, 60_000).then(
        () => null,
        (e: Error) => e,
      );
      expect(err).not.toBeNull();
      return JSON.parse(err!.message) as { code: string; message: string };
    };
    const prune = await failure({ model: 'lstm-text-op11', method: 'prune', options: { structured: true, keep: 0.5 } });
    expect(prune.code).toBe('invalid_model');
    expect(prune.message).toMatch(/nothing to prune: no chain of two MatMul\/Gemm layers.*no Conv/);
    const bad = await failure({
      model: 'lstm-text-op11',
      method: 'quantize-int8-static',
      options: { calibration: [[{ name: 'words', datatype: 'INT64', shape: [1, 2], data: [1, 2] }]] },
    });
    expect(bad).toMatchObject({ code: 'bad_request', message: 'options.calibration[0]: no tensor for the model\'s input "tokens"' });
    expect((await (await fetch(`${p.url}/v1/models/lstm-text-op11`)).json()).versions).toHaveLength(1);
  });
});

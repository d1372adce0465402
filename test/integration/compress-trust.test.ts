// Compression that can be trusted: a candidate is judged on 256 rows per output against the method's
// tolerance, fp16 forms are tried in order of quality until one fits, a candidate that breaks the
// model is refused with its report kept on the job, and a comparison that proves nothing fails.
import { QueueEvents } from 'bullmq';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildModel, node } from '../../workers/onnx/builder.ts';
import { f32 } from '../../workers/onnx/graph.ts';
import { DT } from '../../workers/onnx/proto.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

/**
 * A probability map and its logits, as a text detector's head: sigmoid(x / tiny / huge - 3), which is
 * sigmoid(6x - 3) in float32. In float16 `tiny` is 0 and `huge` infinite, so the map is lost unless
 * the divisions stay in float32 with their constants.
 */
function divisionMap(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'image', elemType: DT.FLOAT, shape: ['n', 1, 16, 16] }],
    outputs: [
      { name: 'map', elemType: DT.FLOAT, shape: ['n', 1, 16, 16] },
      { name: 'logits', elemType: DT.FLOAT, shape: ['n', 1, 16, 16] },
    ],
    initializers: [f32('tiny', [], Float32Array.of(1e-8)), f32('huge', [], Float32Array.of(1e8 / 6)), f32('bias', [], Float32Array.of(3))],
    nodes: [
      node('Div', ['image', 'tiny'], ['big'], {}, 'div_tiny'),
      node('Div', ['big', 'huge'], ['scaled'], {}, 'div_huge'),
      node('Sub', ['scaled', 'bias'], ['logits'], {}, 'bias'),
      node('Sigmoid', ['logits'], ['map'], {}, 'sigmoid'),
    ],
  });
}

/** The same map through (x + 1e6) - 1e6: 1e6 is infinite in float16 and Add/Sub are not range-sensitive, so every form gives NaN. */
function offsetMap(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'image', elemType: DT.FLOAT, shape: ['n', 1, 16, 16] }],
    outputs: [{ name: 'map', elemType: DT.FLOAT, shape: ['n', 1, 16, 16] }],
    initializers: [f32('offset', [], Float32Array.of(1e6)), f32('gain', [], Float32Array.of(6)), f32('bias', [], Float32Array.of(3))],
    nodes: [
      node('Add', ['image', 'offset'], ['shifted'], {}, 'shift'),
      node('Sub', ['shifted', 'offset'], ['back'], {}, 'unshift'),
      node('Mul', ['back', 'gain'], ['scaled'], {}, 'gain'),
      node('Sub', ['scaled', 'bias'], ['logits'], {}, 'bias'),
      node('Sigmoid', ['logits'], ['map'], {}, 'sigmoid'),
    ],
  });
}

/** An output that is the same for every input: agreement on it would prove nothing. */
function constantModel(): Uint8Array {
  return buildModel({
    inputs: [{ name: 'x', elemType: DT.FLOAT, shape: ['n', 4] }],
    outputs: [{ name: 'y', elemType: DT.FLOAT, shape: ['n', 4] }],
    initializers: [f32('zero', [], Float32Array.of(0)), f32('one', [], Float32Array.of(1))],
    nodes: [node('Mul', ['x', 'zero'], ['z'], {}, 'zero'), node('Add', ['z', 'one'], ['y'], {}, 'one')],
  });
}

let p: TestPlatform;
let events: QueueEvents;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  expect((await uploadModel(p.url, 'detector', divisionMap())).status).toBe(201);
  expect((await uploadModel(p.url, 'overflow', offsetMap())).status).toBe(201);
  expect((await uploadModel(p.url, 'constant', constantModel())).status).toBe(201);
});
afterAll(async () => {
  await events?.close();
  await p?.stop();
});

async function run(body: Record<string, unknown>) {
  const res = await postJson(`${p.url}/v1/jobs/compress`, body);
  expect(res.status, await res.clone().text()).toBe(202);
  const { id } = await res.json();
  const job = (await p.deps.queues.queue('compress').getJob(id))!;
  try {
    return { ok: true as const, result: await job.waitUntilFinished(events, 180_000), id };
  } catch (e) {
    const state = await (await fetch(`${p.url}/v1/jobs/${id}`)).json();
    return { ok: false as const, message: (JSON.parse((e as Error).message) as { message: string }).message, state, id };
  }
}

describe('compression you can trust', () => {
  it('fp16 that would lose a probability map is not kept: the form with range-sensitive ops in float32 is', async () => {
    const r = await run({ model: 'detector', method: 'fp16', registerAs: 'detector-fp16' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const { report } = r.result;
    const forms = report.details.forms as {
      form: string;
      withinTolerance: boolean;
      outputs: { name: string; cosine?: number; constantInCandidate?: number }[];
    }[];
    // The full float16 form was measured and failed on the map; the form kept fits the bar.
    expect(forms.map((f) => [f.form, f.withinTolerance])).toEqual([
      ['fp16', false],
      ['fp16, range-sensitive ops in float32', true],
    ]);
    expect(forms[0]!.outputs.find((o) => o.name === 'map')!.cosine ?? 0).toBeLessThan(0.999);
    expect(report.details.form).toBe('fp16, range-sensitive ops in float32');
    expect(report.details.keptFloat32).toEqual(expect.arrayContaining(['div_tiny (Div)', 'div_huge (Div)', 'sigmoid (Sigmoid)']));
    expect(report.verdict).toMatchObject({ data: 'generated', rows: 256, passed: true, tolerance: { cosine: 0.999, top1: 0.99 } });
    expect(report.verdict.outputs.map((o: { name: string }) => o.name).sort()).toEqual(['logits', 'map']);
    for (const o of report.verdict.outputs) expect(o.cosine).toBeGreaterThanOrEqual(0.999);
    // The registered model's map, run directly, varies as the parent's does.
    const bytes = new Uint8Array(await (await fetch(`${p.url}/v1/models/detector-fp16/versions/1/onnx`)).arrayBuffer());
    expect(await onnxCheck(bytes)).toBeNull();
    const s = await ort.InferenceSession.create(bytes);
    const x = Float32Array.from({ length: 256 }, (_, i) => i / 128 - 1);
    const map = (await s.run({ image: new ort.Tensor('float32', x, [1, 1, 16, 16]) })).map!.data as Float32Array;
    for (let i = 0; i < 256; i += 37) expect(map[i]).toBeCloseTo(1 / (1 + Math.exp(-(6 * x[i]! - 3))), 3);
  });

  it('fp16 that breaks every form is refused: nothing registered, the failure names the output, the report stays on the job', async () => {
    const r = await run({ model: 'overflow', method: 'fp16', registerAs: 'overflow-fp16' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toMatch(/fp16 refused, not registered: output "(map|logits)"/);
    expect(r.state.progress).toMatchObject({ step: 'refused', report: { verdict: { passed: false, rows: 256 } } });
    const forms = r.state.progress.report.details.forms as { withinTolerance: boolean }[];
    expect(forms).toHaveLength(2);
    expect(forms.every((f) => !f.withinTolerance)).toBe(true);
    expect((await fetch(`${p.url}/v1/models/overflow-fp16`)).status).toBe(404);
  });

  it('a comparison over an output that is constant in the parent proves nothing: the job fails saying so', async () => {
    const r = await run({ model: 'constant', method: 'fp16', registerAs: 'constant-fp16' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toMatch(/cannot judge the candidate: the parent's output "y" is constant \(1\)/);
    expect((await fetch(`${p.url}/v1/models/constant-fp16`)).status).toBe(404);
  });
});

// Compression that can be trusted: a candidate is judged on 256 rows per output against the method's
// tolerance, fp16 forms are tried in order of quality until one fits, a candidate that breaks the
// model is refused with its report kept on the job, and a comparison that proves nothing fails.
import { QueueEvents } from 'bullmq';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildModel, floatTensor, node } from '../../workers/onnx/builder.ts';
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

/**
 * Models as training leaves them: a few units carry the signal, the rest are weak (small weights in
 * and out), so a share of them can go without changing the answers. Random weights have no such slack.
 */
function seeded(seed: number) {
  let s = seed;
  return (n: number, scale: number, weak?: (i: number) => boolean) =>
    Float32Array.from({ length: n }, (_, i) => (((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1) * scale * (weak?.(i) ? 0.01 : 1));
}

function slackMlp(): Uint8Array {
  const rnd = seeded(7);
  const [f, h, c] = [32, 128, 10];
  const weakUnit = (u: number) => u % 4 !== 0; // three in four hidden units are weak
  return buildModel({
    inputs: [{ name: 'input', elemType: DT.FLOAT, shape: ['n', f] }],
    outputs: [{ name: 'output', elemType: DT.FLOAT, shape: ['n', c] }],
    nodes: [
      node('MatMul', ['input', 'w0'], ['m0']),
      node('Add', ['m0', 'b0'], ['a0']),
      node('Relu', ['a0'], ['r0']),
      node('MatMul', ['r0', 'w1'], ['m1']),
      node('Add', ['m1', 'b1'], ['output']),
    ],
    initializers: [
      floatTensor(
        'w0',
        [f, h],
        rnd(f * h, 0.4, (i) => weakUnit(i % h)),
      ),
      floatTensor('b0', [h], rnd(h, 0.1, weakUnit)),
      floatTensor(
        'w1',
        [h, c],
        rnd(h * c, 0.4, (i) => weakUnit(Math.floor(i / c))),
      ),
      floatTensor('b1', [c], rnd(c, 0.1)),
    ],
  });
}

function slackCnn(): Uint8Array {
  const rnd = seeded(11);
  const weakChannel = (ch: number) => ch % 4 !== 0;
  return buildModel({
    inputs: [{ name: 'image', elemType: DT.FLOAT, shape: ['n', 3, 16, 16] }],
    outputs: [{ name: 'logits', elemType: DT.FLOAT, shape: ['n', 10] }],
    nodes: [
      node('Conv', ['image', 'c1_w', 'c1_b'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node('Relu', ['c1'], ['r1']),
      node('Conv', ['r1', 'c2_w', 'c2_b'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node('Relu', ['c2'], ['r2']),
      node('GlobalAveragePool', ['r2'], ['g']),
      node('Flatten', ['g'], ['flat'], { axis: 1 }),
      node('Gemm', ['flat', 'fc_w', 'fc_b'], ['logits'], { transB: 1 }),
    ],
    initializers: [
      floatTensor(
        'c1_w',
        [16, 3, 3, 3],
        rnd(16 * 27, 0.3, (i) => weakChannel(Math.floor(i / 27))),
      ),
      floatTensor('c1_b', [16], rnd(16, 0.1, weakChannel)),
      floatTensor(
        'c2_w',
        [8, 16, 3, 3],
        rnd(8 * 16 * 9, 0.3, (i) => weakChannel(Math.floor(i / 9) % 16)),
      ),
      floatTensor('c2_b', [8], rnd(8, 0.1)),
      floatTensor('fc_w', [10, 8], rnd(80, 1)),
      floatTensor('fc_b', [10], rnd(10, 0.1)),
    ],
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
  expect((await uploadModel(p.url, 'mlp', slackMlp())).status).toBe(201);
  expect((await uploadModel(p.url, 'cnn', slackCnn())).status).toBe(201);
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

  it.each(['mlp', 'cnn'])('prune with targetAgreement 0.98 (%s): units removed, a smaller file, the agreement kept on the measuring data', async (model) => {
    const r = await run({ model, method: 'prune', options: { targetAgreement: 0.98 }, registerAs: `${model}-pruned` });
    expect(r.ok, r.ok ? '' : r.message).toBe(true);
    if (!r.ok) return;
    const { report } = r.result;
    const d = report.details;
    console.log(
      `${model}: keep ${d.keep}, bytes ${report.bytesBefore} -> ${report.bytesAfter}, rows/s@32 ${Math.round(report.rowsPerSecondBefore)} -> ${Math.round(report.rowsPerSecondAfter)}, rows/s@1 ${Math.round(report.rowsPerSecondBatch1Before)} -> ${Math.round(report.rowsPerSecondBatch1After)}, agreement ${d.agreement}`,
    );
    expect(d.form).toBe('structured');
    expect(d.keep).toBeLessThan(1);
    expect(d.agreement).toBeGreaterThanOrEqual(0.98);
    expect(d.levels.length).toBeGreaterThan(1);
    expect(report.bytesAfter).toBeLessThan(report.bytesBefore);
    expect(d.paramsAfter).toBeLessThan(d.paramsBefore);
    expect(report.argmaxAgreement).toBeGreaterThanOrEqual(0.98);
    expect(report.verdict).toMatchObject({ data: 'generated', rows: 256, passed: true });
    expect(await onnxCheck(new Uint8Array(await (await fetch(`${p.url}/v1/models/${model}-pruned/versions/1/onnx`)).arrayBuffer()))).toBeNull();
  });

  it('magnitude pruning on request says the file keeps its size', async () => {
    const r = await run({ model: 'mlp', method: 'prune', options: { structured: false, sparsity: 0.3 }, registerAs: 'mlp-zeros', allowSlower: true });
    expect(r.ok, r.ok ? '' : r.message).toBe(true);
    if (!r.ok) return;
    expect(r.result.report.details).toMatchObject({ form: 'magnitude', note: expect.stringMatching(/keeps its size/) });
  });
});

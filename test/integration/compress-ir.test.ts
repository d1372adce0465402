// Compression of models from newer ONNX releases: an IR 10 model's fields that the old bindings
// dropped (graph, node and function metadata, function value_info) survive a rewrite, and a model
// with an IR or opset newer than the rewrites know is refused, naming the version.
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildModel, floatTensor, node, rng } from '../../workers/onnx/builder.ts';
import { decodeModel, DT, encodeModel, onnx } from '../../workers/onnx/proto.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

/** An MLP written as an IR `ir` model at `opset`, carrying IR 10 fields and a model-local function. */
function modernMlp(ir: number, opset: number): Uint8Array {
  const r = rng(3);
  const rnd = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  const m = decodeModel(
    buildModel({
      inputs: [{ name: 'x', elemType: DT.FLOAT, shape: ['n', 8] }],
      outputs: [{ name: 'y', elemType: DT.FLOAT, shape: ['n', 4] }],
      nodes: [node('MatMul', ['x', 'w0'], ['m0'], {}, 'mm0'), node('Relu', ['m0'], ['r0'], {}, 'relu'), node('MatMul', ['r0', 'w1'], ['y'], {}, 'mm1')],
      initializers: [floatTensor('w0', [8, 16], rnd(128)), floatTensor('w1', [16, 4], rnd(64))],
    }),
  );
  m.irVersion = ir;
  m.opsetImport[0]!.version = opset;
  m.opsetImport.push(onnx.OperatorSetIdProto.create({ domain: 'local', version: 1 }));
  m.graph!.metadataProps = [{ key: 'stage', value: 'ir10' }];
  m.graph!.input![0]!.metadataProps = [{ key: 'unit', value: 'metres' }];
  m.graph!.node![1]!.metadataProps = [{ key: 'origin', value: 'layer1' }];
  m.functions = [
    onnx.FunctionProto.create({
      name: 'Twice',
      domain: 'local',
      overload: 'v2',
      input: ['a'],
      output: ['b'],
      node: [node('Add', ['a', 'a'], ['b'], {}, 'add')],
      opsetImport: [{ domain: '', version: opset }],
      valueInfo: [{ name: 'b', type: { tensorType: { elemType: DT.FLOAT } } }],
      metadataProps: [{ key: 'author', value: 'modelq' }],
    }),
  ];
  return encodeModel(m);
}

let p: TestPlatform;
let events: QueueEvents;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  expect((await uploadModel(p.url, 'ir10', modernMlp(10, 21))).status).toBe(201);
  expect((await uploadModel(p.url, 'ir11', modernMlp(11, 21))).status).toBe(201);
  expect((await uploadModel(p.url, 'opset22', modernMlp(10, 22))).status).toBe(201);
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
    return { ok: true as const, result: await job.waitUntilFinished(events, 180_000) };
  } catch (e) {
    return { ok: false as const, message: (JSON.parse((e as Error).message) as { message: string }).message };
  }
}

describe('compression of IR 10 models', () => {
  it.each(['fp16', 'quantize-int8'])(
    '%s keeps the fields the rewrite does not touch: metadata of graph, input and node, the local function',
    async (method) => {
      const r = await run({ model: 'ir10', method, registerAs: `ir10-${method}`, allowSlower: true, tolerance: { top1: 0.9, cosine: 0.99 } });
      expect(r.ok, r.ok ? '' : r.message).toBe(true);
      const m = decodeModel(new Uint8Array(await (await fetch(`${p.url}/v1/models/ir10-${method}/versions/1/onnx`)).arrayBuffer()));
      expect(Number(m.irVersion)).toBe(10);
      expect(m.graph!.metadataProps).toEqual([expect.objectContaining({ key: 'stage', value: 'ir10' })]);
      expect(m.graph!.input![0]!.metadataProps).toEqual([expect.objectContaining({ key: 'unit', value: 'metres' })]);
      expect(m.graph!.node!.find((n) => n.name === 'relu')?.metadataProps).toEqual([expect.objectContaining({ key: 'origin', value: 'layer1' })]);
      const f = m.functions[0]!;
      expect([f.name, f.overload, f.valueInfo?.[0]?.name, f.metadataProps?.[0]?.key]).toEqual(['Twice', 'v2', 'b', 'author']);
    },
  );

  it.each([
    ['ir11', /fp16 refused: the model's IR version 11 is newer than 10/],
    ['opset22', /fp16 refused: the model's opset 22 is newer than 21/],
  ])('%s: refused before any rewrite, naming the version; nothing registered', async (model, message) => {
    const r = await run({ model, method: 'fp16', registerAs: `${model}-fp16` });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toMatch(message);
    expect((await fetch(`${p.url}/v1/models/${model}-fp16`)).status).toBe(404);
  });
});

// Pipelines (docs/processing.md#pipelines): a detector whose boxes feed a classifier through crops,
// and a plain chain (embed -> head), registered as versions of their own. Online (/v2, :predict,
// gRPC) and in batches (a ZIP of images, JSONL rows of tensors) they equal the same steps run here
// by hand: images decoded, scaled and cropped with sharp, each model run in onnxruntime directly
// (within 1e-4). Registration refuses unknown models and versions, mismatched types and shapes, and
// cycles, naming them; a failing step is named; lineage lists the steps' versions; an alias on the
// pipeline serves it; the bullmq transport serves it too; registering it loads its steps' models on
// a serving worker before any request.
import { status } from '@grpc/grpc-js';
import { zipSync } from 'fflate';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { buildModel, floatTensor, int64Tensor, node } from '../../workers/onnx/builder.ts';
import { DT } from '../../workers/onnx/proto.ts';
import { convNet, directRun, gatherModel, mlp, rows } from '../fixtures/models.ts';
import { draw, drawRotatedJpeg, type Drawing } from '../fixtures/images.ts';
import { codeOf, inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import { readWorkerStats } from '../../core/stats.ts';

const DET = 32;
const CROP = 16;
const MEAN: [number, number, number] = [0.485, 0.456, 0.406];
const STD: [number, number, number] = [0.229, 0.224, 0.225];
const LABELS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const BOXES = 3;

/**
 * A detector: the image [n,3,32,32] -> boxes [n,3,4] (x1 y1 x2 y2, fractions), moved by the image's
 * mean brightness m: two boxes and a third of no area, as detectors pad their outputs.
 */
function detector(): Uint8Array {
  const a = new Float32Array([0.05, 0.02, 0.05, 0.03, -0.04, 0.03, 0.02, 0.01, 0, 0, 0, 0]);
  const b = new Float32Array([0.1, 0.15, 0.6, 0.7, 0.45, 0.3, 0.95, 0.9, 0, 0, 0, 0]);
  return buildModel({
    inputs: [{ name: 'image', elemType: DT.FLOAT, shape: ['n', 3, DET, DET] }],
    outputs: [{ name: 'boxes', elemType: DT.FLOAT, shape: ['n', BOXES, 4] }],
    nodes: [
      node('ReduceMean', ['image'], ['m'], { axes: [1, 2, 3], keepdims: 0 }),
      node('Reshape', ['m', 'col'], ['m1']),
      node('MatMul', ['m1', 'A'], ['ma']),
      node('Add', ['ma', 'B'], ['flat']),
      node('Reshape', ['flat', 'box_shape'], ['boxes']),
    ],
    initializers: [floatTensor('A', [1, 12], a), floatTensor('B', [12], b), int64Tensor('col', [2], [-1, 1]), int64Tensor('box_shape', [3], [-1, BOXES, 4])],
  });
}

const det = detector();
const cls = convNet(11);
const embed = mlp({ sizes: [4, 8, 6], seed: 2 });
const head = mlp({ sizes: [6, 5, 3], seed: 3 });
const wide = mlp({ sizes: [8, 3], seed: 4 });

const DET_PROCESSING = {
  inputs: [{ type: 'image', input: 'image', resize: { mode: 'exact', width: DET, height: DET }, normalize: { scale: 1 / 255, offset: 0 } }],
};
const CLS_PROCESSING = {
  inputs: [{ type: 'image', input: 'image', resize: { mode: 'exact', width: CROP, height: CROP }, normalize: { mean: MEAN, std: STD } }],
  post: { output: 'logits', softmax: true, argmax: true },
  labels: LABELS,
};
const DETECT_AND_CLASSIFY = {
  inputs: [{ name: 'image', datatype: 'BYTES', shape: [-1] }],
  steps: [
    { name: 'detect', model: 'det', version: 1, inputs: { image: 'image' } },
    { name: 'classify', model: 'cls', alias: 'prod', forEach: { boxes: 'detect.boxes', image: 'image' } },
  ],
  outputs: { boxes: 'detect.boxes', logits: 'classify.logits', label: 'classify.label' },
};
const CHAIN = {
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
  steps: [
    { name: 'classify', model: 'head', inputs: { input: 'embed.output' } },
    { name: 'embed', model: 'embed', inputs: { input: 'x' } },
  ],
  outputs: { scores: 'classify.output', embedding: 'embed.output' },
};

const RED: Drawing = { width: 48, height: 40, background: [20, 40, 200], circle: [14, 12, 9, '#ff2020'] };
const GREEN: Drawing = { width: 37, height: 61, background: [240, 240, 30], rect: [5, 30, 20, 25, '#10a010'] };

let p: TestPlatform;
let server: RunningGrpcServer;
let c: InferenceClient;

const put = (path: string, body: unknown) =>
  fetch(`${p.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const register = (name: string, spec: unknown) => postJson(`${p.url}/v1/models/${name}/pipelines`, spec);
const message = async (r: Response) => ((await r.json()) as { error: { message: string } }).error.message;

beforeAll(async () => {
  // 3 images x 3 boxes fit; 4 do not.
  p = await startPlatform({ workers: 1, env: { MODELQ_PIPELINE_MAX_CROPS: '9' } });
  server = await startGrpcServer(p.deps, {
    port: 0,
    host: '127.0.0.1',
    keys: KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }),
  });
  c = inferenceClient(`127.0.0.1:${server.port}`);
  for (const [name, bytes] of [
    ['det', det],
    ['cls', cls],
    ['embed', embed],
    ['head', head],
    ['wide', wide],
    ['lookup', gatherModel()],
  ] as const) {
    const r = await uploadModel(p.url, name, bytes);
    expect(r.status, `${name}: ${await r.clone().text()}`).toBe(201);
  }
  expect((await put('/v1/models/det/versions/1/processing', DET_PROCESSING)).status).toBe(200);
  expect((await put('/v1/models/cls/versions/1/processing', CLS_PROCESSING)).status).toBe(200);
  expect((await put('/v1/models/cls/aliases/prod', { version: 1 })).status).toBe(200);
}, 120_000);
afterAll(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
});

/** Decoded upright with sharp, as RGB pixels. */
async function decode(file: Buffer) {
  const d = await sharp(file).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: d.data, width: d.info.width, height: d.info.height };
}

async function resized(px: { data: Buffer; width: number; height: number }, w: number, h: number): Promise<Buffer> {
  return sharp(px.data, { raw: { width: px.width, height: px.height, channels: 3 } })
    .resize(w, h, { fit: 'fill' })
    .raw()
    .toBuffer();
}

function nchw(px: Buffer, hw: number, f: (v: number, c: number) => number): Float32Array {
  const out = new Float32Array(3 * hw);
  for (let c = 0; c < 3; c++) for (let i = 0; i < hw; i++) out[c * hw + i] = f(px[i * 3 + c]!, c);
  return out;
}

/** The pipeline by hand: detect on the scaled image, then for each box with an area, crop, scale, normalise and classify. */
async function byHand(files: Buffer[]): Promise<{ boxes: Float32Array; logits: Float32Array; labels: string[] }> {
  const n = files.length;
  const decoded = await Promise.all(files.map(decode));
  const detIn = new Float32Array(n * 3 * DET * DET);
  for (const [i, px] of decoded.entries())
    detIn.set(
      nchw(await resized(px, DET, DET), DET * DET, (v) => v / 255),
      i * 3 * DET * DET,
    );
  const boxes = (await directRun(det, { image: { data: detIn, dims: [n, 3, DET, DET] } })).boxes!;
  const logits = new Float32Array(n * BOXES * 10);
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const px = decoded[i]!;
    for (let k = 0; k < BOXES; k++) {
      const b = boxes.subarray((i * BOXES + k) * 4, (i * BOXES + k + 1) * 4);
      const left = Math.max(0, Math.floor(b[0]! * px.width));
      const top = Math.max(0, Math.floor(b[1]! * px.height));
      const right = Math.min(px.width, Math.ceil(b[2]! * px.width));
      const bottom = Math.min(px.height, Math.ceil(b[3]! * px.height));
      if (right - left < 1 || bottom - top < 1) {
        labels.push('');
        continue;
      }
      const crop = await sharp(px.data, { raw: { width: px.width, height: px.height, channels: 3 } })
        .extract({ left, top, width: right - left, height: bottom - top })
        .raw()
        .toBuffer({ resolveWithObject: true });
      const small = await resized({ data: crop.data, width: crop.info.width, height: crop.info.height }, CROP, CROP);
      const x = nchw(small, CROP * CROP, (v, ch) => (v / 255 - MEAN[ch]!) / STD[ch]!);
      const l = (await directRun(cls, { image: { data: x, dims: [1, 3, CROP, CROP] } })).logits!;
      logits.set(l, (i * BOXES + k) * 10);
      labels.push(LABELS[l.indexOf(Math.max(...l))]!);
    }
  }
  return { boxes, logits, labels };
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `element ${i}`).toBeLessThan(1e-4);
}

type V2Out = { name: string; datatype: string; shape: number[]; data: unknown[] };
const v2 = async (path: string, body: unknown) => {
  const res = await postJson(`${p.url}${path}`, body);
  return { status: res.status, body: (await res.json()) as { outputs: V2Out[]; model_version: string; error?: string } };
};
const outputsOf = (b: { outputs: V2Out[] }) => Object.fromEntries(b.outputs.map((o) => [o.name, o]));

describe('a detector whose boxes feed a classifier through crops', () => {
  let files: Buffer[];
  beforeAll(async () => {
    files = [await draw(RED, 'jpeg'), await draw(GREEN, 'png'), await drawRotatedJpeg(GREEN)];
  });

  it('registers as a version checked against its steps, whose lineage lists the step versions', async () => {
    const res = await register('detcls', DETECT_AND_CLASSIFY);
    expect(res.status, await res.clone().text()).toBe(201);
    const rec = (await res.json()) as { version: number; inputs: unknown; outputs: unknown; lineage: { source: string; steps: unknown[] }; pipeline: unknown };
    expect(rec.version).toBe(1);
    expect(rec.inputs).toEqual([{ name: 'image', datatype: 'BYTES', shape: [-1] }]);
    expect(rec.outputs).toEqual([
      { name: 'boxes', datatype: 'FP32', shape: [-1, BOXES, 4] },
      { name: 'logits', datatype: 'FP32', shape: [-1, BOXES, 10] },
      { name: 'label', datatype: 'BYTES', shape: [-1, BOXES] },
    ]);
    expect(rec.lineage.source).toBe('pipeline');
    expect(rec.lineage.steps).toEqual([
      expect.objectContaining({ step: 'detect', model: 'det', version: 1 }),
      expect.objectContaining({ step: 'classify', model: 'cls', version: 1, alias: 'prod' }),
    ]);
    // The same graph over the same versions is that version again.
    const again = await register('detcls', DETECT_AND_CLASSIFY);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { version: number }).version).toBe(1);
  });

  it('/v2 with BYTES files equals detecting, cropping and classifying by hand', async () => {
    const want = await byHand(files);
    // The boxes differ between images, and the padding box has no area: the comparison is not trivial.
    expect(want.labels.filter((l) => l === '')).toHaveLength(files.length);
    const { status: s, body } = await v2('/v2/models/detcls/infer', {
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [files.length], data: files.map((f) => f.toString('base64')) }],
    });
    expect(s, JSON.stringify(body)).toBe(200);
    const out = outputsOf(body);
    expect(out.boxes!.shape).toEqual([files.length, BOXES, 4]);
    expectClose(out.boxes!.data as number[], want.boxes);
    expect(out.logits!.shape).toEqual([files.length, BOXES, 10]);
    expectClose(out.logits!.data as number[], want.logits);
    expect(out.label!.data).toEqual(want.labels);
  });

  it(':predict with {"b64"} instances gives the same, one prediction per image', async () => {
    const want = await byHand(files.slice(0, 2));
    const res = await postJson(`${p.url}/v1/models/detcls:predict`, { instances: files.slice(0, 2).map((f) => ({ b64: f.toString('base64') })) });
    expect(res.status).toBe(200);
    const { predictions } = (await res.json()) as { predictions: { logits: number[][]; label: string[] }[] };
    expect(predictions).toHaveLength(2);
    expectClose(
      predictions.flatMap((pr) => pr.logits.flat()),
      want.logits,
    );
    expect(predictions.flatMap((pr) => pr.label)).toEqual(want.labels);
  });

  it('an alias on the pipeline serves it', async () => {
    expect((await put('/v1/models/detcls/aliases/live', { version: 1 })).status).toBe(200);
    const want = await byHand(files.slice(1, 2));
    const { status: s, body } = await v2('/v2/models/detcls/versions/live/infer', {
      inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [files[1]!.toString('base64')] }],
    });
    expect(s).toBe(200);
    expect(body.model_version).toBe('1');
    expectClose(outputsOf(body).logits!.data as number[], want.logits);
  });

  it('a ZIP batch of images: one row per file, named by it, equal to the run by hand; a corrupt file is one error row naming the step', async () => {
    const zip = zipSync({ 'red.jpg': files[0]!, 'broken.png': new Uint8Array(Buffer.from('not a picture')), 'green.png': files[1]!, 'turned.jpg': files[2]! });
    const res = await fetch(`${p.url}/v1/batches?model=detcls&chunkRows=2`, {
      method: 'POST',
      body: Buffer.from(zip),
      headers: { 'content-type': 'application/zip' },
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const done = await until(
      async () => {
        const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string };
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      `batch ${id}`,
      120_000,
    );
    expect(done.status).toBe('completed');
    const read = async (kind: string) =>
      (await (await fetch(`${p.url}/v1/batches/${id}/${kind}`)).text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { row: number; id: string; outputs?: { logits: number[][]; label: string[] }; error?: { message: string } });
    const out = await read('output');
    const errors = await read('errors');
    expect(out.map((o) => o.id)).toEqual(['red.jpg', 'green.png', 'turned.jpg']);
    const want = await byHand(files);
    expectClose(
      out.flatMap((o) => o.outputs!.logits.flat()),
      want.logits,
    );
    expect(out.flatMap((o) => o.outputs!.label)).toEqual(want.labels);
    expect(errors.map((e) => e.id)).toEqual(['broken.png']);
    expect(errors[0]!.error!.message).toMatch(/pipeline step "detect" \(model det@1\).*does not decode/);
  });

  it('a request that would cut more crops than MODELQ_PIPELINE_MAX_CROPS is refused before cropping', async () => {
    const four = [...files, files[0]!];
    const res = await postJson(`${p.url}/v1/models/detcls:predict`, { instances: four.map((f) => ({ b64: f.toString('base64') })) });
    expect(res.status).toBe(400);
    expect(await message(res)).toMatch(
      /pipeline step "classify" \(model cls@1\): 4 rows x 3 boxes of "detect.boxes" are 12 crops, over MODELQ_PIPELINE_MAX_CROPS \(9\)/,
    );
  });

  it('online, a file that does not decode is a 400 naming the step', async () => {
    const res = await postJson(`${p.url}/v1/models/detcls:predict`, { instances: [{ b64: Buffer.from('nope, not an image').toString('base64') }] });
    expect(res.status).toBe(400);
    expect(await message(res)).toMatch(/pipeline step "detect" \(model det@1\): input "image": .*does not decode/);
  });
});

describe('a chain of tensor models', () => {
  const x = rows(5, 4, 9);
  async function chainByHand(input: Float32Array, n: number) {
    const e = (await directRun(embed, { input: { data: input, dims: [n, 4] } })).output!;
    const s = (await directRun(head, { input: { data: e, dims: [n, 6] } })).output!;
    return { e, s };
  }

  it('registers (its steps in any order) and /v2 equals running both models by hand', async () => {
    const res = await register('chain', CHAIN);
    expect(res.status, await res.clone().text()).toBe(201);
    const want = await chainByHand(x, 5);
    const { status: s, body } = await v2('/v2/models/chain/infer', { inputs: [{ name: 'x', datatype: 'FP32', shape: [5, 4], data: Array.from(x) }] });
    expect(s, JSON.stringify(body)).toBe(200);
    const out = outputsOf(body);
    expect(out.scores!.shape).toEqual([5, 3]);
    expectClose(out.scores!.data as number[], want.s);
    expectClose(out.embedding!.data as number[], want.e);
    // Not explained (yet): refused, naming why.
    const explained = await v2('/v2/models/chain/infer', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }],
      parameters: { explain: true },
    });
    expect(explained.status).toBe(400);
    expect(explained.body.error).toMatch(/chain is a pipeline: it cannot be explained yet/);
  });

  it('gRPC ModelInfer serves the pipeline through the same service', async () => {
    const want = await chainByHand(x.subarray(0, 8), 2);
    const r = await c.call('ModelInfer', {
      model_name: 'chain',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], contents: { fp32_contents: Array.from(x.subarray(0, 8)) } }],
      outputs: [{ name: 'scores' }],
    });
    expect(r.outputs.map((o: { name: string }) => o.name)).toEqual(['scores']);
    const raw = r.raw_output_contents[0] as Buffer;
    expectClose(new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), want.s);
    const bad = c.call('ModelInfer', { model_name: 'chain', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] });
    expect(await codeOf(bad)).toBe(status.INVALID_ARGUMENT);
  });

  it('a JSONL batch of tensor rows equals the run by hand', async () => {
    const body = [0, 1, 2].map((i) => JSON.stringify({ id: `r${i}`, x: Array.from(x.subarray(i * 4, i * 4 + 4)) })).join('\n') + '\n{"id":"short","x":[1,2]}\n';
    const res = await fetch(`${p.url}/v1/batches?model=chain`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
    expect(res.status, await res.clone().text()).toBe(202);
    const { id } = (await res.json()) as { id: string };
    await until(async () => ((await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string }).status === 'completed', `batch ${id}`, 120_000);
    const lines = (await (await fetch(`${p.url}/v1/batches/${id}/output`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; outputs: { scores: number[] } });
    expect(lines.map((l) => l.id)).toEqual(['r0', 'r1', 'r2']);
    const want = await chainByHand(x.subarray(0, 12), 3);
    expectClose(
      lines.flatMap((l) => l.outputs.scores),
      want.s,
    );
    const errors = (await (await fetch(`${p.url}/v1/batches/${id}/errors`)).text()).split('\n').filter(Boolean);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toContain('must be 4 numbers');
  });

  it('a step that fails at run time is named in the error', async () => {
    const res = await register('twoway', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [-1, 4] },
        { name: 'idx', datatype: 'INT64', shape: [-1, 1] },
      ],
      steps: [
        { name: 'embed', model: 'embed', inputs: { input: 'x' } },
        { name: 'table', model: 'lookup', inputs: { idx: 'idx' } },
      ],
      outputs: { e: 'embed.output', emb: 'table.emb' },
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const ok = await v2('/v2/models/twoway/infer', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
        { name: 'idx', datatype: 'INT64', shape: [1, 1], data: [3] },
      ],
    });
    expect(ok.status).toBe(200);
    expectClose(outputsOf(ok.body).emb!.data as number[], [1.2, 1.3, 1.4, 1.5]);
    const bad = await v2('/v2/models/twoway/infer', {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] },
        { name: 'idx', datatype: 'INT64', shape: [1, 1], data: [42] },
      ],
    });
    expect(bad.status).toBeGreaterThanOrEqual(400);
    expect(bad.body.error).toMatch(/pipeline step "table" \(model lookup@1\)/);
  });
});

describe('registration refuses what does not fit, naming it', () => {
  const refused = async (spec: unknown, pattern: RegExp) => {
    const res = await register('bad', spec);
    expect(res.status).toBe(400);
    expect(await message(res)).toMatch(pattern);
  };

  it('an unknown model, version or alias', async () => {
    await refused({ ...CHAIN, steps: [CHAIN.steps[0], { ...CHAIN.steps[1], model: 'nosuch' }] }, /steps\[1\] "embed": model "nosuch" not found/);
    await refused({ ...CHAIN, steps: [CHAIN.steps[0], { ...CHAIN.steps[1], version: 7 }] }, /steps\[1\] "embed": model "embed" has no version 7/);
    await refused({ ...CHAIN, steps: [CHAIN.steps[0], { ...CHAIN.steps[1], alias: 'gone' }] }, /steps\[1\] "embed": model "embed" has no alias "gone"/);
  });

  it('a type or shape that does not match', async () => {
    await refused(
      { ...CHAIN, steps: [{ ...CHAIN.steps[0], model: 'wide' }, CHAIN.steps[1]] },
      /steps\[0\] "classify" \(model wide@1\)\.inputs\.input: "embed.output" is FP32 \[-1,6\]; the input takes FP32 \[-1,8\]/,
    );
    await refused(
      { ...CHAIN, inputs: [{ name: 'x', datatype: 'INT64', shape: [-1, 4] }] },
      /"embed" \(model embed@1\)\.inputs\.input: "x" is INT64 \[-1,4\]; the input takes FP32 \[-1,4\]/,
    );
    await refused(
      {
        ...DETECT_AND_CLASSIFY,
        steps: [DETECT_AND_CLASSIFY.steps[0], { ...DETECT_AND_CLASSIFY.steps[1], forEach: { boxes: 'detect.nothing', image: 'image' } }],
      },
      /forEach.boxes "detect.nothing" is not an output of that step/,
    );
  });

  it('a pipeline has no ONNX file, no processing of its own, and is not compressed', async () => {
    const onnx = await fetch(`${p.url}/v1/models/chain/versions/1/onnx`);
    expect(onnx.status).toBe(409);
    expect(await message(onnx)).toMatch(/chain@1 is a pipeline/);
    const proc = await put('/v1/models/chain/versions/1/processing', DET_PROCESSING);
    expect(proc.status).toBe(400);
    expect(await message(proc)).toMatch(/is a pipeline: declare processing on its steps' models/);
    const comp = await postJson(`${p.url}/v1/jobs/compress`, { model: 'chain', method: 'fp16' });
    expect(comp.status).toBe(400);
    expect(await message(comp)).toMatch(/chain@1 is a pipeline: compress its steps' models instead/);
    // A step may not be a pipeline either.
    await refused({ ...CHAIN, steps: [CHAIN.steps[0], { ...CHAIN.steps[1], model: 'chain' }] }, /model chain@1\) is a pipeline: a step must be a model/);
  });

  it('an unknown step, a missing input, and a cycle', async () => {
    await refused({ ...CHAIN, outputs: { s: 'ghost.output' } }, /outputs.s: "ghost.output" names an unknown step "ghost"/);
    await refused({ ...CHAIN, steps: [CHAIN.steps[0], { ...CHAIN.steps[1], inputs: {} }] }, /input "input" is fed by nothing/);
    await refused(
      {
        ...CHAIN,
        steps: [
          { name: 'a', model: 'embed', inputs: { input: 'b.output' } },
          { name: 'b', model: 'embed', inputs: { input: 'a.output' } },
        ],
        outputs: { o: 'a.output' },
      },
      /cycle: a -> b -> a/,
    );
  });
});

describe('over the bullmq transport', () => {
  it('a pipeline request travels as an infer job and its steps load together on the worker', async () => {
    const q = await startPlatform({ workers: 1, env: { MODELQ_ONLINE_TRANSPORT: 'bullmq', MODELQ_WARM_RECENT: '0' } });
    try {
      for (const [name, bytes] of [
        ['embed', embed],
        ['head', head],
      ] as const)
        expect((await uploadModel(q.url, name, bytes)).status).toBe(201);
      expect((await postJson(`${q.url}/v1/models/chain/pipelines`, CHAIN)).status).toBe(201);
      const x = rows(3, 4, 5);
      const e = (await directRun(embed, { input: { data: x, dims: [3, 4] } })).output!;
      const want = (await directRun(head, { input: { data: e, dims: [3, 6] } })).output!;
      const res = await postJson(`${q.url}/v2/models/chain/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4], data: Array.from(x) }] });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { outputs: V2Out[] };
      expectClose(outputsOf(body).scores!.data as number[], want);
    } finally {
      await q.stop();
    }
  }, 120_000);
});

describe('warm together', () => {
  it("registering a pipeline loads its steps' models on a serving worker before any request", async () => {
    const q = await startPlatform();
    try {
      await q.addWorker({ MODELQ_QUEUES: 'model' }); // checks uploads; serves nothing
      const shas: string[] = [];
      for (const [name, bytes] of [
        ['embed', embed],
        ['head', head],
      ] as const) {
        const r = await uploadModel(q.url, name, bytes);
        expect(r.status).toBe(201);
        shas.push(((await r.json()) as { sha256: string }).sha256);
      }
      // Started after the uploads, with nothing recently used: only the pipeline's registration can make it load them.
      const server = await q.addWorker({ MODELQ_QUEUES: 'infer', MODELQ_WARM_RECENT: '0' });
      const before = await until(async () => (await readWorkerStats(q.redis, q.deps.prefix)).find((s) => s.pid === server.child.pid), 'the worker figures');
      expect(before.models?.filter((m) => shas.includes(m.sha256)) ?? []).toEqual([]);
      expect((await postJson(`${q.url}/v1/models/chain/pipelines`, CHAIN)).status).toBe(201);
      const warm = await until(async () => {
        const s = (await readWorkerStats(q.redis, q.deps.prefix)).find((x) => x.pid === server.child.pid);
        return shas.every((sha) => s?.models?.some((m) => m.sha256 === sha && m.state === 'loaded')) ? s : undefined;
      }, "the pipeline's step models to be loaded");
      expect(warm.engine.requests).toBe(0);
      expect(server.lines.some((l) => l.includes('model loaded ahead of requests') && l.includes('step of chain@1'))).toBe(true);
    } finally {
      await q.stop();
    }
  }, 120_000);
});

// A CNN with declared image processing: JPEG, PNG and WebP files drawn by the test, online through
// /v2 (BYTES of base64 files), :predict ({"b64"} instances and a multipart body), give the outputs of
// the same files decoded and preprocessed here with the declared steps and run in onnxruntime
// directly (within 1e-4); an EXIF-rotated file and odd sizes are handled; the post-processing's
// labels follow the logits; a corrupt file is a 400 naming it; an image whose header claims more
// pixels than MODELQ_MAX_IMAGE_PIXELS is refused without being decoded; declarations that do not
// fit the model are refused naming the field. In batches (a ZIP of files, a JSONL of b64 rows) the
// rows keep the file names as ids and equal the same direct run; a corrupt file and an over-large
// one are one error row each, naming the file.
import { zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convNet, directRun } from '../fixtures/models.ts';
import { claimedSizePng, draw, drawRotatedJpeg, reference, type Drawing, type Reference } from '../fixtures/images.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const model = convNet(11);
const LABELS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const REF: Reference = { shorter: 20, crop: 16, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const PROCESSING = {
  inputs: [
    {
      type: 'image',
      input: 'image',
      resize: { mode: 'shorter-side', size: REF.shorter },
      centerCrop: { width: REF.crop, height: REF.crop },
      normalize: { mean: REF.mean, std: REF.std },
    },
  ],
  post: { output: 'logits', softmax: true, argmax: true, topK: 3 },
  labels: LABELS,
};
const MAX_PIXELS = 1_000_000;

const RED_CIRCLE: Drawing = { width: 37, height: 23, background: [20, 40, 200], circle: [12, 11, 8, '#ff2020'] };
const GREEN_RECT: Drawing = { width: 40, height: 64, background: [240, 240, 30], rect: [5, 30, 20, 25, '#10a010'] };
const CORNER: Drawing = { width: 33, height: 21, background: [200, 200, 200], rect: [0, 0, 12, 8, '#000000'] };

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_MAX_IMAGE_PIXELS: String(MAX_PIXELS) } });
  expect((await uploadModel(p.url, 'cnn', model)).status).toBe(201);
  const put = await fetch(`${p.url}/v1/models/cnn/versions/1/processing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(PROCESSING),
  });
  expect(put.status).toBe(200);
  expect(((await put.json()) as { processing: unknown }).processing).toMatchObject({ labels: LABELS });
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

async function expected(files: { file: Buffer; orientation6?: boolean }[]): Promise<Float32Array> {
  const per = 3 * REF.crop * REF.crop;
  const x = new Float32Array(files.length * per);
  for (const [i, f] of files.entries()) x.set(await reference(f.file, { ...REF, orientation6: f.orientation6 }), i * per);
  return (await directRun(model, { image: { data: x, dims: [files.length, 3, REF.crop, REF.crop] } })).logits!;
}

const predict = (body: unknown) =>
  fetch(`${p.url}/v1/models/cnn:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

type Prediction = { logits: number[]; probabilities: number[]; label: string; top_k_labels: string[]; top_k_scores: number[] };

function expectClose(got: number[], want: ArrayLike<number>) {
  expect(got).toHaveLength(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThan(1e-4));
}

describe('files online', () => {
  it(':predict with {"b64"} instances equals decoding, preprocessing and onnxruntime in the test, for JPEG, PNG and WebP of odd sizes', async () => {
    const files = [await draw(RED_CIRCLE, 'jpeg'), await draw(GREEN_RECT, 'png'), await draw(CORNER, 'webp')];
    const want = await expected(files.map((file) => ({ file })));
    const res = await predict({ instances: files.map((f) => ({ image: { b64: f.toString('base64') } })) });
    expect(res.status).toBe(200);
    const { predictions } = (await res.json()) as { predictions: Prediction[] };
    expect(predictions).toHaveLength(3);
    predictions.forEach((pr, i) => {
      const logits = Array.from(want.subarray(i * 10, (i + 1) * 10));
      expectClose(pr.logits, logits);
      const best = logits.indexOf(Math.max(...logits));
      expect(pr.label).toBe(LABELS[best]);
      expect(pr.top_k_labels[0]).toBe(LABELS[best]);
      expect(pr.top_k_labels).toHaveLength(3);
      const e = logits.map((l) => Math.exp(l - logits[best]!));
      const sum = e.reduce((a, b) => a + b, 0);
      expectClose(
        pr.probabilities,
        e.map((v) => v / sum),
      );
      expect(pr.top_k_scores[0]).toBeCloseTo(e[best]! / sum, 5);
    });
    // The three drawings differ, so the comparison above could not pass with one image for all.
    expect(predictions[0]!.logits).not.toEqual(predictions[1]!.logits);
  });

  it('/v2 takes BYTES inputs of base64 files and answers the logits and the post-processing outputs', async () => {
    const file = await draw(GREEN_RECT, 'jpeg');
    const want = await expected([{ file }]);
    const res = await fetch(`${p.url}/v2/models/cnn/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'BYTES', shape: [1], data: [file.toString('base64')] }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { outputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] };
    const out = Object.fromEntries(body.outputs.map((o) => [o.name, o]));
    expectClose(out.logits!.data as number[], want);
    expect(out.label).toMatchObject({ datatype: 'BYTES', shape: [1] });
    expect(out.top_k_labels).toMatchObject({ datatype: 'BYTES', shape: [1, 3] });
  });

  it('a multipart body of files is one row per file', async () => {
    const a = await draw(RED_CIRCLE, 'png');
    const b = await draw(CORNER, 'jpeg');
    const want = await expected([{ file: a }, { file: b }]);
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(a)]), 'a.png');
    form.append('file', new Blob([new Uint8Array(b)]), 'b.jpg');
    const res = await fetch(`${p.url}/v1/models/cnn:predict`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const { predictions } = (await res.json()) as { predictions: Prediction[] };
    expectClose([...predictions[0]!.logits, ...predictions[1]!.logits], want);
  });

  it('an EXIF-rotated JPEG is turned upright before resizing and cropping', async () => {
    const file = await drawRotatedJpeg(CORNER);
    const upright = await expected([{ file, orientation6: true }]);
    const asStored = await expected([{ file }]);
    const res = await predict({ instances: [{ b64: file.toString('base64') }] });
    expect(res.status).toBe(200);
    const { predictions } = (await res.json()) as { predictions: Prediction[] };
    expectClose(predictions[0]!.logits, upright);
    // Read as stored (not turned), the model sees another picture: the orientation mattered.
    expect(Math.max(...predictions[0]!.logits.map((l, i) => Math.abs(l - asStored[i]!)))).toBeGreaterThan(1e-3);
  });

  it('a corrupt file is a 400 naming the file; an over-large image is refused before decoding', async () => {
    const good = await draw(RED_CIRCLE, 'png');
    const corrupt = Buffer.from('this is not an image at all, only text pretending');
    const res = await predict({ instances: [{ b64: good.toString('base64') }, { b64: corrupt.toString('base64') }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/file 1: the file does not decode/);
    // The header claims 20000 x 20000 pixels over a body of 4: decoding would fail differently.
    const bomb = await claimedSizePng(20_000, 20_000);
    const big = await predict({ instances: [{ b64: bomb.toString('base64') }] });
    expect(big.status).toBe(400);
    const msg = ((await big.json()) as { error: { message: string } }).error.message;
    expect(msg).toContain('20000x20000');
    expect(msg).toContain('MODELQ_MAX_IMAGE_PIXELS');
  });

  it('inputs that are not files are refused by the producer, naming the field', async () => {
    const res = await predict({ instances: [{ image: 12 }] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/data\[0\] must be a file in base64/);
  });
});

describe('declarations', () => {
  const put = (body: unknown) =>
    fetch(`${p.url}/v1/models/cnn/versions/1/processing`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const message = async (r: Response) => ((await r.json()) as { error: { message: string } }).error.message;

  it('refuses a size, an input, an output or labels that do not fit the model', async () => {
    const step = PROCESSING.inputs[0]!;
    let r = await put({ inputs: [{ ...step, centerCrop: { width: 15, height: 16 } }] });
    expect(r.status).toBe(400);
    expect(await message(r)).toMatch(/gives 16x15 images; input "image" \[-1,3,16,16\] takes 16x16/);
    r = await put({ inputs: [{ ...step, input: 'pixels' }] });
    expect(await message(r)).toMatch(/"pixels" is not an input of the model/);
    r = await put({ inputs: [step], post: { output: 'scores' } });
    expect(await message(r)).toMatch(/post.output "scores" is not an output/);
    r = await put({ inputs: [step], post: { output: 'logits' }, labels: ['a', 'b'] });
    expect(await message(r)).toMatch(/labels has 2 names; output "logits" has 10 classes/);
    r = await put({ inputs: [{ ...step, dtype: 'fp16' }] });
    expect(await message(r)).toMatch(/dtype fp16 gives FP16; input "image" is FP32/);
    r = await put({ inputs: [{ ...step, resize: { mode: 'sideways' } }] });
    expect(r.status).toBe(400);
  });

  it('an upload may declare its processing in the Modelq-Processing header', async () => {
    const res = await fetch(`${p.url}/v1/models/cnn2/versions`, {
      method: 'POST',
      body: Buffer.from(convNet(12)),
      headers: { 'content-type': 'application/octet-stream', 'modelq-processing': JSON.stringify({ ...PROCESSING, labels: undefined }) },
    });
    expect(res.status).toBe(201);
    const rec = (await res.json()) as { processing?: { post?: unknown } };
    expect(rec.processing?.post).toMatchObject({ output: 'logits', topK: 3 });
    const got = await fetch(`${p.url}/v1/models/cnn2/versions/1/processing`);
    expect(((await got.json()) as { inputs: unknown[] }).inputs).toHaveLength(1);
  });
});

describe('files in batches', () => {
  async function runBatch(body: Uint8Array | string, contentType: string) {
    const res = await fetch(`${p.url}/v1/batches?model=cnn&chunkRows=3`, { method: 'POST', body: Buffer.from(body), headers: { 'content-type': contentType } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const done = await until(
      async () => {
        const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string };
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      `batch ${id} to end`,
      120_000,
    );
    expect(done.status).toBe('completed');
    const read = async (kind: string) =>
      (await (await fetch(`${p.url}/v1/batches/${id}/${kind}`)).text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { row: number; id: string; outputs?: Prediction; error?: { message: string } });
    return { out: await read('output'), errors: await read('errors') };
  }

  it('a ZIP of JPEG and PNG files: one row per file, named by it, equal to the direct run; a corrupt and an over-large file are one error row each', async () => {
    const good: [string, Buffer, boolean?][] = [
      ['red.jpg', await draw(RED_CIRCLE, 'jpeg')],
      ['green.png', await draw(GREEN_RECT, 'png')],
      ['corner.webp', await draw(CORNER, 'webp')],
      ['turned.jpg', await drawRotatedJpeg(CORNER), true],
      ['dir/red.png', await draw(RED_CIRCLE, 'png')],
    ];
    const zip = zipSync({
      [good[0]![0]]: good[0]![1],
      [good[1]![0]]: good[1]![1],
      'broken.jpg': new Uint8Array(Buffer.from('not a picture')),
      [good[2]![0]]: good[2]![1],
      'huge.png': await claimedSizePng(20_000, 20_000),
      [good[3]![0]]: good[3]![1],
      [good[4]![0]]: good[4]![1],
    });
    const { out, errors } = await runBatch(zip, 'application/zip');
    expect(out.map((o) => o.id)).toEqual(good.map((g) => g[0]));
    const want = await expected(good.map(([, file, orientation6]) => ({ file, orientation6 })));
    out.forEach((o, i) => {
      expectClose(o.outputs!.logits, want.subarray(i * 10, (i + 1) * 10));
      expect(o.outputs!.label).toEqual([o.outputs!.top_k_labels[0]]);
    });
    expect(errors.map((e) => e.id)).toEqual(['broken.jpg', 'huge.png']);
    expect(errors[0]!.error!.message).toMatch(/file "broken.jpg".*does not decode/);
    expect(errors[1]!.error!.message).toMatch(/file "huge.png".*20000x20000.*MODELQ_MAX_IMAGE_PIXELS/);
    expect(errors.map((e) => e.row)).toEqual([2, 4]);
  });

  it('a JSONL of {"id", "image": {"b64"}} rows gives the same outputs', async () => {
    const files = [await draw(GREEN_RECT, 'jpeg'), await draw(RED_CIRCLE, 'png')];
    const body = files.map((f, i) => JSON.stringify({ id: `pic-${i}`, image: { b64: f.toString('base64') } })).join('\n') + '\n';
    const { out, errors } = await runBatch(body, 'application/x-ndjson');
    expect(errors).toEqual([]);
    expect(out.map((o) => o.id)).toEqual(['pic-0', 'pic-1']);
    const want = await expected(files.map((file) => ({ file })));
    out.forEach((o, i) => expectClose(o.outputs!.logits, want.subarray(i * 10, (i + 1) * 10)));
  });
});

// gRPC ModelInfer with raw file bytes for a CNN with declared image processing: a BYTES input whose
// elements are the JPEG and PNG files themselves (in raw_input_contents, length-prefixed, and in
// contents.bytes_contents) gives the logits of the same files decoded and preprocessed here and run
// in onnxruntime directly (within 1e-4); a corrupt file is INVALID_ARGUMENT naming it.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { convNet, directRun } from '../fixtures/models.ts';
import { draw, reference, CLASSIFIER_PROCESSING, CLASSIFIER_REF, GREEN_RECT, RED_CIRCLE } from '../fixtures/images.ts';
import { codeOf, inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const model = convNet(11);
const REF = CLASSIFIER_REF;
const PROCESSING = CLASSIFIER_PROCESSING;

let p: TestPlatform;
let server: RunningGrpcServer;
let c: InferenceClient;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'cnn', model)).status).toBe(201);
  const put = await fetch(`${p.url}/v1/models/cnn/versions/1/processing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(PROCESSING),
  });
  expect(put.status).toBe(200);
  server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
  c = inferenceClient(`127.0.0.1:${server.port}`);
}, 120_000);
afterAll(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
});

/** BYTES elements as raw_input_contents frames them: a 4-byte little-endian length before each. */
const framed = (files: Buffer[]) => Buffer.concat(files.flatMap((f) => [Buffer.from(Uint32Array.of(f.length).buffer), f]));
const asF32 = (b: Buffer) => new Float32Array(new Uint8Array(b).buffer);

async function expected(files: Buffer[]): Promise<Float32Array> {
  const per = 3 * REF.crop * REF.crop;
  const x = new Float32Array(files.length * per);
  for (const [i, f] of files.entries()) x.set(await reference(f, REF), i * per);
  return (await directRun(model, { image: { data: x, dims: [files.length, 3, REF.crop, REF.crop] } })).logits!;
}

it('raw file bytes in raw_input_contents and in bytes_contents equal the direct run', async () => {
  const files = [await draw(RED_CIRCLE, 'jpeg'), await draw(GREEN_RECT, 'png')];
  const want = await expected(files);
  const raw = await c.call('ModelInfer', {
    model_name: 'cnn',
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [2] }],
    outputs: [{ name: 'logits' }],
    raw_input_contents: [framed(files)],
  });
  expect(raw.outputs[0]).toMatchObject({ name: 'logits', datatype: 'FP32', shape: [2, 10] });
  Array.from(asF32(raw.raw_output_contents[0])).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-4));

  const typed = await c.call('ModelInfer', {
    model_name: 'cnn',
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [2], contents: { bytes_contents: files } }],
    outputs: [{ name: 'logits' }],
  });
  Array.from(asF32(typed.raw_output_contents[0])).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-4));
}, 60_000);

it('a file that does not decode is INVALID_ARGUMENT naming it', async () => {
  const call = c.call('ModelInfer', {
    model_name: 'cnn',
    inputs: [{ name: 'image', datatype: 'BYTES', shape: [2] }],
    raw_input_contents: [framed([await draw(RED_CIRCLE, 'png'), Buffer.from([0xff, 0xd8, 0x00, 0x01])])],
  });
  expect(await codeOf(call)).toBe(status.INVALID_ARGUMENT);
  await expect(call).rejects.toThrow(/file 1: the file does not decode/);
}, 60_000);

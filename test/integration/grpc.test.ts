// The inference protocol over gRPC with a grpc-js client: health and metadata, ModelInfer with raw and
// typed contents for FP32, INT64 and BYTES models (answers equal direct onnxruntime runs), messages
// above gRPC's 4 MiB default, and the status codes of bad requests, unknown models and keys.
import { spawn } from 'node:child_process';
import { status } from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { encodeBytes } from '../../producer/grpc/contents.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { directRun, rows, tinyMlp } from '../fixtures/models.ts';
import { bytesModel, directRunAny, int64Model } from '../fixtures/protocol-models.ts';
import { bearer, codeOf, inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { freePort } from '../chaos/helpers.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let server: RunningGrpcServer;
let c: InferenceClient;
const mlp = tinyMlp(3);

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  server = await startGrpcServer(p.deps, {
    port: 0,
    host: '127.0.0.1',
    keys: KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }),
  });
  c = inferenceClient(`127.0.0.1:${server.port}`, { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
  for (const [name, bytes] of [
    ['mlp', mlp],
    ['ints', int64Model()],
    ['text', bytesModel()],
  ] as const) {
    const r = await uploadModel(p.url, name, bytes);
    expect(r.status, `${name}: ${await r.clone().text()}`).toBe(201);
  }
});
afterAll(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
});

const f32 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const asF32 = (b: Buffer) => new Float32Array(new Uint8Array(b).buffer);
const asI64 = (b: Buffer) => new BigInt64Array(new Uint8Array(b).buffer);
const decodeStrings = (b: Buffer) => {
  const out: string[] = [];
  for (let o = 0; o < b.length;) {
    const n = b.readUInt32LE(o);
    out.push(b.toString('utf8', o + 4, o + 4 + n));
    o += 4 + n;
  }
  return out;
};

describe('GRPCInferenceService', () => {
  it('answers health and metadata', async () => {
    expect(await c.call('ServerLive', {})).toEqual({ live: true });
    expect(await c.call('ServerReady', {})).toEqual({ ready: true });
    expect(await c.call('ServerMetadata', {})).toMatchObject({ name: 'modelq' });
    const meta = await c.call('ModelMetadata', { name: 'mlp' });
    expect(meta).toMatchObject({ name: 'mlp', versions: ['1'], platform: 'onnxruntime_onnx' });
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
    expect((await c.call('ModelMetadata', { name: 'text', version: '1' })).outputs.map((o: { datatype: string }) => o.datatype)).toEqual(['BYTES', 'BYTES']);
    await until(async () => (await c.call('ModelReady', { name: 'mlp' })).ready === true, 'model ready');
  });

  it('FP32: raw and typed contents give the direct onnxruntime answer, in raw_output_contents, with the id', async () => {
    const x = rows(5, 4, 11);
    const expected = (await directRun(mlp, { input: { data: x, dims: [5, 4] } })).output!;
    const raw = await c.call('ModelInfer', {
      model_name: 'mlp',
      id: 'req-7',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [5, 4] }],
      raw_input_contents: [f32(x)],
    });
    expect(raw).toMatchObject({ model_name: 'mlp', model_version: '1', id: 'req-7', outputs: [{ name: 'output', datatype: 'FP32', shape: [5, 3] }] });
    expect(Array.from(asF32(raw.raw_output_contents[0]))).toEqual(Array.from(expected));
    const typed = await c.call('ModelInfer', {
      model_name: 'mlp',
      model_version: '1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [5, 4], contents: { fp32_contents: Array.from(x) } }],
    });
    expect(typed.outputs[0].contents).toBeUndefined();
    expect(Array.from(asF32(typed.raw_output_contents[0]))).toEqual(Array.from(expected));
  });

  it('INT64: raw and typed int64 contents, outputs filtered by `outputs`', async () => {
    const x = BigInt64Array.from([1n, -2n, 3n, 40n, 5n, 6000000000n]);
    const expected = await directRunAny(int64Model(), { x: new ort.Tensor('int64', x, [2, 3]) });
    const raw = await c.call('ModelInfer', {
      model_name: 'ints',
      inputs: [{ name: 'x', datatype: 'INT64', shape: [2, 3] }],
      raw_input_contents: [Buffer.from(x.buffer)],
    });
    expect(raw.outputs).toEqual([
      { name: 'y', datatype: 'INT64', shape: [2, 3] },
      { name: 's', datatype: 'INT64', shape: [2, 1] },
    ]);
    expect(asI64(raw.raw_output_contents[0])).toEqual(expected.y!.data);
    expect(asI64(raw.raw_output_contents[1])).toEqual(expected.s!.data);
    const typed = await c.call('ModelInfer', {
      model_name: 'ints',
      inputs: [{ name: 'x', datatype: 'INT64', shape: [2, 3], contents: { int64_contents: Array.from(x, Number) } }],
      outputs: [{ name: 's' }],
    });
    expect(typed.outputs).toEqual([{ name: 's', datatype: 'INT64', shape: [2, 1] }]);
    expect(asI64(typed.raw_output_contents[0])).toEqual(expected.s!.data);
  });

  it('BYTES: length-prefixed raw strings and typed bytes_contents', async () => {
    const words = ['héllo wörld', '', 'ünïcode ✓', 'abc'];
    const expected = await directRunAny(bytesModel(), { text: new ort.Tensor('string', words, [4]) });
    const raw = await c.call('ModelInfer', {
      model_name: 'text',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [4] }],
      raw_input_contents: [encodeBytes(words)],
    });
    expect(raw.outputs).toEqual([
      { name: 'upper', datatype: 'BYTES', shape: [4] },
      { name: 'same', datatype: 'BYTES', shape: [4] },
    ]);
    expect(decodeStrings(raw.raw_output_contents[0])).toEqual(expected.upper!.data);
    expect(decodeStrings(raw.raw_output_contents[1])).toEqual(words);
    const typed = await c.call('ModelInfer', {
      model_name: 'text',
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [4], contents: { bytes_contents: words.map((w) => Buffer.from(w)) } }],
    });
    expect(decodeStrings(typed.raw_output_contents[0])).toEqual(expected.upper!.data);
  });

  it('takes and returns messages above 4 MiB', async () => {
    const n = 400_000; // 6.4 MB in, 4.8 MB out
    const x = rows(n, 4, 5);
    const expected = (await directRun(mlp, { input: { data: x, dims: [n, 4] } })).output!;
    const r = await c.call('ModelInfer', { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [n, 4] }], raw_input_contents: [f32(x)] });
    const got = asF32(r.raw_output_contents[0]);
    expect(got.length).toBe(n * 3);
    let maxDiff = 0;
    for (let i = 0; i < got.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - expected[i]!));
    expect(maxDiff).toBeLessThan(1e-5);
  });

  it('maps bad requests to INVALID_ARGUMENT and unknown models to NOT_FOUND', async () => {
    const x = f32(rows(1, 4));
    const input = { name: 'input', datatype: 'FP32', shape: [1, 4] };
    const infer = (req: object) => codeOf(c.call('ModelInfer', { model_name: 'mlp', ...req }));
    // Typed contents beside raw_input_contents, as Triton refuses.
    expect(await infer({ inputs: [{ ...input, contents: { fp32_contents: [1, 2, 3, 4] } }], raw_input_contents: [x] })).toBe(status.INVALID_ARGUMENT);
    expect(await infer({ inputs: [{ ...input, shape: [1, 5] }], raw_input_contents: [x] })).toBe(status.INVALID_ARGUMENT);
    expect(await infer({ inputs: [input], raw_input_contents: [x.subarray(0, 6)] })).toBe(status.INVALID_ARGUMENT);
    expect(await infer({ inputs: [{ ...input, name: 'nope' }], raw_input_contents: [x] })).toBe(status.INVALID_ARGUMENT);
    expect(await infer({ inputs: [input], raw_input_contents: [x], parameters: { device: { string_param: 'tpu' } } })).toBe(status.INVALID_ARGUMENT);
    expect(
      await codeOf(
        c.call('ModelInfer', {
          model_name: 'text',
          inputs: [{ name: 'text', datatype: 'BYTES', shape: [1] }],
          raw_input_contents: [Buffer.from([9, 0, 0, 0, 65])],
        }),
      ),
    ).toBe(status.INVALID_ARGUMENT);
    expect(await infer({ model_name: 'missing', inputs: [input], raw_input_contents: [x] })).toBe(status.NOT_FOUND);
    expect(await infer({ model_version: '9', inputs: [input], raw_input_contents: [x] })).toBe(status.NOT_FOUND);
    expect(await codeOf(c.call('ModelMetadata', { name: 'missing' }))).toBe(status.NOT_FOUND);
    const e = await c.call('ModelInfer', { model_name: 'mlp', inputs: [{ ...input, shape: [1, 5] }], raw_input_contents: [x] }).catch((err) => err);
    expect(e.details).toMatch(/inputs\[0\] "input": shape \[1,5\]/);
    // CPU-explicit parameters pass.
    expect(await infer({ inputs: [input], raw_input_contents: [x], parameters: { device: { string_param: 'cpu' } } })).toBe('ok');
  });

  it('checks keys from `authorization: Bearer` metadata: UNAUTHENTICATED, PERMISSION_DENIED', async () => {
    // The models were uploaded on the open platform: they belong to tenant "default" and are private.
    const keys = KeyRing.fromConfig({
      MODELQ_API_KEYS_FILE: undefined,
      MODELQ_API_KEYS: JSON.stringify({
        'reader-key-0123456789': { tenant: 'default', scopes: ['read'] },
        'infer-key-0123456789ab': { tenant: 'default', scopes: ['infer'] },
        'other-tenant-key-01234': { tenant: 'b', scopes: ['read', 'infer'] },
      }),
    });
    const locked = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys });
    const lc = inferenceClient(`127.0.0.1:${locked.port}`);
    try {
      const req = { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [f32(rows(1, 4))] };
      expect(await lc.call('ServerLive', {})).toEqual({ live: true }); // health needs no key
      expect(await codeOf(lc.call('ModelInfer', req))).toBe(status.UNAUTHENTICATED);
      expect(await codeOf(lc.call('ModelInfer', req, bearer('wrong-key-0123456789')))).toBe(status.UNAUTHENTICATED);
      expect(await codeOf(lc.call('ModelInfer', req, bearer('reader-key-0123456789')))).toBe(status.PERMISSION_DENIED);
      expect(await codeOf(lc.call('ModelMetadata', { name: 'mlp' }, bearer('reader-key-0123456789')))).toBe('ok');
      expect(await codeOf(lc.call('ModelInfer', req, bearer('infer-key-0123456789ab')))).toBe('ok');
      // Another tenant's private model is NOT_FOUND, as over REST.
      expect(await codeOf(lc.call('ModelInfer', req, bearer('other-tenant-key-01234')))).toBe(status.NOT_FOUND);
      expect(await codeOf(lc.call('ModelMetadata', { name: 'mlp' }, bearer('other-tenant-key-01234')))).toBe(status.NOT_FOUND);
    } finally {
      lc.close();
      await locked.close();
    }
  });

  it('answers UNAVAILABLE while Redis does not answer (ServerReady too; ServerLive still answers)', async () => {
    const { Redis } = await import('ioredis');
    // A producer whose Redis is down: a real client pointed at an address where nothing listens.
    const dead = new Redis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => {});
    const down = await startGrpcServer(
      { ...p.deps, redis: dead },
      { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }) },
    );
    const dc = inferenceClient(`127.0.0.1:${down.port}`);
    try {
      expect(await dc.call('ServerLive', {})).toEqual({ live: true });
      expect(await codeOf(dc.call('ServerReady', {}))).toBe(status.UNAVAILABLE);
      expect(
        await codeOf(
          dc.call('ModelInfer', { model_name: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [f32(rows(1, 4))] }),
        ),
      ).toBe(status.UNAVAILABLE);
      expect(await codeOf(dc.call('ModelMetadata', { name: 'mlp' }))).toBe(status.UNAVAILABLE);
    } finally {
      dc.close();
      await down.close();
      dead.disconnect();
    }
  });

  it('is started by the producer process on MODELQ_GRPC_PORT and stops with it', async () => {
    const grpcPort = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'producer/main.ts'], {
      cwd: new URL('../..', import.meta.url).pathname,
      stdio: 'ignore',
      env: { ...process.env, ...p.env, MODELQ_PORT: String(await freePort()), MODELQ_GRPC_PORT: String(grpcPort) },
    });
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const pc = inferenceClient(`127.0.0.1:${grpcPort}`);
    try {
      await until(
        () =>
          pc.call('ServerLive', {}).then(
            (r) => r.live === true,
            () => false,
          ),
        'gRPC on the producer',
        30_000,
      );
      const r = await pc.call('ModelInfer', {
        model_name: 'mlp',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }],
        raw_input_contents: [f32(rows(1, 4))],
      });
      expect(r.outputs[0].shape).toEqual([1, 3]);
    } finally {
      pc.close();
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

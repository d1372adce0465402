// The inference protocol over gRPC from Python (Debian's python3-grpcio), encoding as Triton's
// tritonclient does: numpy raw contents and length-prefixed BYTES; answers equal direct onnxruntime runs.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { PROTO_OPTIONS, PROTO_PATH, startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { directRun, rows, tinyMlp, tmpDir } from '../fixtures/models.ts';
import { bytesModel, directRunAny, int64Model } from '../fixtures/protocol-models.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const CLIENT = path.resolve(import.meta.dirname, '../fixtures/triton_style_client.py');
let p: TestPlatform;
let server: RunningGrpcServer;
const mlp = tinyMlp(4);

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  server = await startGrpcServer(p.deps, {
    port: 0,
    host: '127.0.0.1',
    keys: KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }),
  });
  for (const [name, bytes] of [
    ['mlp', mlp],
    ['ints', int64Model()],
    ['text', bytesModel()],
  ] as const) {
    expect((await uploadModel(p.url, name, bytes)).status).toBe(201);
  }
});
afterAll(async () => {
  await server?.close();
  await p?.stop();
});

interface PyOutput {
  datatype: string;
  shape: number[];
  data: (number | string)[];
}
type PyResult = { id: string; model_version: string; outputs: Record<string, PyOutput> } | { code: string; details: string };

async function runPython(cases: object[], stream = false): Promise<{ live: boolean; results: PyResult[] }> {
  const def = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)['inference.ModelInferRequest'] as unknown as { fileDescriptorProtos: Buffer[] };
  const file = path.join(tmpDir('modelq-py'), 'cases.json');
  fs.writeFileSync(file, JSON.stringify({ descriptors: def.fileDescriptorProtos.map((b) => Buffer.from(b).toString('base64')), cases, stream }));
  const out = await new Promise<string>((resolve, reject) => {
    execFile('/usr/bin/python3', [CLIENT, `127.0.0.1:${server.port}`, file], { maxBuffer: 64 << 20 }, (e, stdout, stderr) =>
      e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout),
    );
  });
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  return JSON.parse(out);
}

describe('a tritonclient-style Python client', () => {
  // ModelInfer calls, then the same requests on one ModelStreamInfer call (tritonclient's start_stream).
  it.each([false, true])('gets FP32, INT64 and BYTES answers equal to direct onnxruntime runs, and the protocol errors (stream: %s)', async (stream) => {
    const x = rows(3, 4, 21);
    const ints = [7, -1, 2, 3, 4, 5000000000];
    const words = ['grüße', 'triton', ''];
    const { live, results } = await runPython(
      [
        { model: 'mlp', id: 'py-1', inputs: [{ name: 'input', datatype: 'FP32', shape: [3, 4], data: Array.from(x) }] },
        { model: 'ints', version: '1', inputs: [{ name: 'x', datatype: 'INT64', shape: [2, 3], data: ints }] },
        { model: 'text', inputs: [{ name: 'text', datatype: 'BYTES', shape: [3], data: words }], outputs: ['upper'] },
        { model: 'mlp', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }], typed_too: true },
        { model: 'nope', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] },
        { model: 'mlp', inputs: [{ name: 'input', datatype: 'INT64', shape: [1, 4], data: [1, 2, 3, 4] }] },
      ],
      stream,
    );
    expect(live).toBe(true);
    const [fp32, int64, bytes, mixed, missing, wrongType] = results as [PyResult, PyResult, PyResult, PyResult, PyResult, PyResult];

    const e32 = (await directRun(mlp, { input: { data: x, dims: [3, 4] } })).output!;
    expect(fp32).toMatchObject({ id: 'py-1', model_version: '1', outputs: { output: { datatype: 'FP32', shape: [3, 3] } } });
    expect('outputs' in fp32 && fp32.outputs.output!.data).toEqual(Array.from(e32));

    const e64 = await directRunAny(int64Model(), { x: new ort.Tensor('int64', BigInt64Array.from(ints, BigInt), [2, 3]) });
    expect('outputs' in int64 && int64.outputs.y!.data).toEqual(Array.from(e64.y!.data as BigInt64Array, Number));
    expect('outputs' in int64 && int64.outputs.s!.data).toEqual(Array.from(e64.s!.data as BigInt64Array, Number));

    const eb = await directRunAny(bytesModel(), { text: new ort.Tensor('string', words, [3]) });
    expect(bytes).toMatchObject({ outputs: { upper: { datatype: 'BYTES', shape: [3] } } });
    expect('outputs' in bytes && Object.keys(bytes.outputs)).toEqual(['upper']);
    expect('outputs' in bytes && bytes.outputs.upper!.data).toEqual(eb.upper!.data);

    expect(mixed).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(missing).toMatchObject({ code: 'NOT_FOUND' });
    expect(wrongType).toMatchObject({ code: 'INVALID_ARGUMENT', details: expect.stringMatching(/datatype INT64 does not match the model's FP32/) });
  });
});

// Explanations over gRPC: ModelInferRequest parameters explain / explainSamples / explainClass give
// the same `attributions` output as REST /v2 (raw_output_contents) and the explanation's figures as
// response parameters; bad parameters are INVALID_ARGUMENT; under keys, infer scope (read is refused).
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { mlpIgnoring } from '../fixtures/explain-models.ts';
import { rows } from '../fixtures/models.ts';
import { bearer, codeOf, inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const F = 5;
const x = rows(3, F, 4);
const bg = rows(20, F, 9);
let p: TestPlatform;
let server: RunningGrpcServer;
let c: InferenceClient;

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'mlp', mlpIgnoring(F, 12, 3, 1))).status).toBe(201);
  const put = await fetch(`${p.url}/v1/models/mlp/versions/1/background`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ rows: Array.from({ length: 20 }, (_, i) => Array.from(bg.subarray(i * F, (i + 1) * F))) }),
  });
  expect(put.status).toBe(200);
  const keys = KeyRing.fromConfig({
    MODELQ_API_KEYS_FILE: undefined,
    MODELQ_API_KEYS: JSON.stringify({
      'reader-key-0123456789': { tenant: 'default', scopes: ['read'] },
      'infer-key-0123456789ab': { tenant: 'default', scopes: ['infer'] },
    }),
  });
  server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys });
  c = inferenceClient(`127.0.0.1:${server.port}`);
});
afterAll(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
});

const f32 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const asF32 = (b: Buffer) => new Float32Array(new Uint8Array(b).buffer);
const INFER = bearer('infer-key-0123456789ab');
const request = (parameters: Record<string, object>) => ({
  model_name: 'mlp',
  parameters,
  inputs: [{ name: 'features', datatype: 'FP32', shape: [3, F] }],
  raw_input_contents: [f32(x)],
});

async function rest(parameters: Record<string, unknown>) {
  const res = await fetch(`${p.url}/v2/models/mlp/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer infer-key-0123456789ab' },
    body: JSON.stringify({ parameters, inputs: [{ name: 'features', datatype: 'FP32', shape: [3, F], data: Array.from(x) }] }),
  });
  return res.json();
}

describe('explanations over gRPC', () => {
  it('answers attributions and the explanation parameters as REST does', async () => {
    const r = await c.call('ModelInfer', request({ explain: { bool_param: true }, explainSamples: { int64_param: 4 } }), INFER);
    const names = r.outputs.map((o: { name: string }) => o.name);
    expect(names).toEqual(['probabilities', 'attributions']);
    expect(r.outputs[1]).toMatchObject({ datatype: 'FP32', shape: [3, F] });
    const attr = Array.from(asF32(r.raw_output_contents[1]));
    const probs = asF32(r.raw_output_contents[0]);
    const base = JSON.parse(r.parameters.explain_base.string_param) as number[];
    const cls = JSON.parse(r.parameters.explain_class.string_param) as number[];
    expect(r.parameters.explain_output.string_param).toBe('probabilities');
    expect(Number(r.parameters.explain_samples.int64_param)).toBe(4);
    for (let n = 0; n < 3; n++) {
      const row = attr.slice(n * F, (n + 1) * F);
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - (probs[n * 3 + cls[n]!]! - base[n]!))).toBeLessThan(1e-4);
      expect(Math.abs(row[1]!)).toBeLessThan(1e-6);
    }
    const viaRest = await rest({ explain: true, explainSamples: 4 });
    expect(viaRest.outputs.find((o: { name: string }) => o.name === 'attributions').data).toEqual(attr);
    expect(viaRest.parameters.explain_base).toEqual(base);
    const fixed = await c.call(
      'ModelInfer',
      request({ explain: { bool_param: true }, explainSamples: { int64_param: 2 }, explainClass: { int64_param: 2 } }),
      INFER,
    );
    expect(JSON.parse(fixed.parameters.explain_class.string_param)).toEqual([2, 2, 2]);
  });

  it('refuses bad explain parameters (INVALID_ARGUMENT) and keys without the infer scope', async () => {
    expect(await codeOf(c.call('ModelInfer', request({ explain: { string_param: 'yes' } }), INFER))).toBe(status.INVALID_ARGUMENT);
    expect(await codeOf(c.call('ModelInfer', request({ explain: { bool_param: true }, explainSamples: { int64_param: 0 } }), INFER))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await codeOf(c.call('ModelInfer', request({ explain: { bool_param: true }, explainClass: { int64_param: 9 } }), INFER))).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await codeOf(c.call('ModelInfer', request({ explain: { bool_param: true } }), bearer('reader-key-0123456789')))).toBe(status.PERMISSION_DENIED);
  });
});

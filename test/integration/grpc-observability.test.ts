// gRPC calls are seen as HTTP requests are: counted by method and status code with their latency
// in /metrics (each ModelStreamInfer request once), and a refused key is written to the audit log
// with the fields REST's lines carry, as a refused REST inference request is.
import { Writable } from 'node:stream';
import { status } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { bearer, codeOf, inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'key-infer-0123456789ab': { tenant: 'a', scopes: ['read', 'infer', 'publish', 'platform'] },
  'key-read-0123456789abc': { tenant: 'a', scopes: ['read'] },
};
const [INFER, READ] = Object.keys(KEYS) as [string, string];
const lines: string[] = [];
let p: TestPlatform;
let server: RunningGrpcServer;
let c: InferenceClient;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS) }, logger: pino({ level: 'info' }, sink) });
  server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
  c = inferenceClient(`127.0.0.1:${server.port}`);
  const up = await fetch(`${p.url}/v1/models/m/versions`, { method: 'POST', body: Buffer.from(tinyMlp()), headers: { authorization: `Bearer ${INFER}` } });
  expect(up.status).toBe(201);
});
afterAll(async () => {
  c?.close();
  await server?.close();
  await p?.stop();
});

const request = (model = 'm') => ({
  model_name: model,
  inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: [1, 2, 3, 4] } }],
});
const audits = () =>
  lines
    .map((l) => JSON.parse(l))
    .filter((l) => l.audit)
    .map(({ tenant, keyId, method, route, status }) => ({ tenant, keyId, method, route, status }));

describe('gRPC metrics and audit', () => {
  it('counts calls by method and status code, with latency, in /metrics', async () => {
    expect(await codeOf(c.call('ModelInfer', request(), bearer(INFER)))).toBe('ok');
    expect(await codeOf(c.call('ModelInfer', request('nope'), bearer(INFER)))).toBe(status.NOT_FOUND);
    const stream = c.stream('ModelStreamInfer', bearer(INFER));
    const answers: unknown[] = [];
    const ended = new Promise((resolve) => stream.on('data', (a) => answers.push(a)).on('end', resolve));
    stream.write(request());
    stream.write(request());
    stream.end();
    await ended;
    expect(answers).toHaveLength(2);
    const text = await (await fetch(`${p.url}/metrics`, { headers: { authorization: `Bearer ${INFER}` } })).text();
    expect(text).toMatch(/^modelq_grpc_requests_total\{method="ModelInfer",code="OK"\} 1$/m);
    expect(text).toMatch(/^modelq_grpc_requests_total\{method="ModelInfer",code="NOT_FOUND"\} 1$/m);
    expect(text).toMatch(/^modelq_grpc_requests_total\{method="ModelStreamInfer",code="OK"\} 2$/m);
    expect(text).toMatch(/^modelq_grpc_request_duration_seconds_count\{method="ModelInfer"\} 2$/m);
  });

  it('audits refused keys on gRPC, as REST audits refused inference requests', async () => {
    expect(await codeOf(c.call('ModelInfer', request()))).toBe(status.UNAUTHENTICATED);
    expect(await codeOf(c.call('ModelInfer', request(), bearer(READ)))).toBe(status.PERMISSION_DENIED);
    const refused = c.stream('ModelStreamInfer', bearer('not-a-key-at-all-0000'));
    expect(await new Promise((resolve) => refused.on('error', (e: { code: number }) => resolve(e.code)).on('data', () => {}))).toBe(status.UNAUTHENTICATED);
    const rest = await fetch(`${p.url}/v2/models/m/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${READ}` },
    });
    expect(rest.status).toBe(403);
    const grpcRoute = (m: string) => `/inference.GRPCInferenceService/${m}`;
    expect(audits()).toEqual(
      expect.arrayContaining([
        { tenant: null, keyId: null, method: 'grpc', route: grpcRoute('ModelInfer'), status: 'UNAUTHENTICATED' },
        { tenant: 'a', keyId: expect.stringMatching(/^[0-9a-f]{12}$/), method: 'grpc', route: grpcRoute('ModelInfer'), status: 'PERMISSION_DENIED' },
        { tenant: null, keyId: null, method: 'grpc', route: grpcRoute('ModelStreamInfer'), status: 'UNAUTHENTICATED' },
        // a key refused for a missing scope is named (tenant and key id), on both protocols
        { tenant: 'a', keyId: expect.stringMatching(/^[0-9a-f]{12}$/), method: 'POST', route: '/v2/models/m/infer', status: 403 },
      ]),
    );
    for (const k of Object.keys(KEYS)) expect(lines.join('')).not.toContain(k);
  });
});

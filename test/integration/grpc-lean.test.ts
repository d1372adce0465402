// The lean gRPC server (producer/grpc/lean.ts): ModelInfer read and answered from node:http2, other
// calls handed to grpc-js over loopback. Its answers are the ones grpc-js alone gives
// (MODELQ_GRPC_LEAN=false), with the trailing model version; what it does not take (a compressed
// message, an unknown method) grpc-js answers; an oversized message is RESOURCE_EXHAUSTED; and the
// client address that rate limits count cannot be forged with the forwarding header.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { PEER_HEADER } from '../../producer/grpc/call-gate.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform | undefined;
const servers: RunningGrpcServer[] = [];
const clients: InferenceClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
  await p?.stop();
  p = undefined;
});

async function start(env: Record<string, string> = {}) {
  p = await startPlatform({ workers: 1, env });
  const r = await uploadModel(p.url, 'm', tinyMlp(3));
  expect(r.status, await r.clone().text()).toBe(201);
  return p;
}

async function serve(p: TestPlatform, lean: boolean, options: grpc.ChannelOptions = {}) {
  const server = await startGrpcServer(
    { ...p.deps, cfg: { ...p.deps.cfg, MODELQ_GRPC_LEAN: lean } },
    { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) },
  );
  servers.push(server);
  const c = inferenceClient(`127.0.0.1:${server.port}`, options);
  clients.push(c);
  return c;
}

const row = Buffer.from(Float32Array.from([0.1, 0.2, 0.3, 0.4]).buffer);
const request = { model_name: 'm', id: 'r-1', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4] }], raw_input_contents: [row] };

describe('lean gRPC server', () => {
  it('answers ModelInfer as grpc-js alone does, with the version in trailing metadata', async () => {
    const p = await start();
    const lean = await (await serve(p, true)).callWithTrailer('ModelInfer', request);
    const plain = await (await serve(p, false)).callWithTrailer('ModelInfer', request);
    expect(lean.response).toEqual(plain.response);
    expect(lean.response.id).toBe('r-1');
    expect(lean.response.raw_output_contents).toHaveLength(1);
    expect(lean.trailer.get('x-modelq-model-version')).toEqual(['1']);
    expect(plain.trailer.get('x-modelq-model-version')).toEqual(['1']);
  });

  it('hands compressed messages and unknown methods to grpc-js', async () => {
    const p = await start();
    // gzip (2): the message arrives compressed, which only grpc-js reads.
    const gz = await serve(p, true, { 'grpc.default_compression_algorithm': 2 });
    const answer = await gz.call<{ model_name: string; raw_output_contents: Buffer[] }>('ModelInfer', request);
    expect(answer.model_name).toBe('m');
    expect(answer.raw_output_contents[0]!.length).toBe(3 * 4);
    expect(await gz.call('ServerLive', {})).toEqual({ live: true });
    const raw = new grpc.Client(`127.0.0.1:${servers[0]!.port}`, grpc.credentials.createInsecure());
    const e = await new Promise<grpc.ServiceError | null>((resolve) =>
      raw.makeUnaryRequest(
        '/inference.GRPCInferenceService/NoSuchMethod',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (err) => resolve(err),
      ),
    );
    raw.close();
    expect(e?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('refuses a ModelInfer message over MODELQ_GRPC_MAX_MESSAGE_MB with RESOURCE_EXHAUSTED', async () => {
    const p = await start({ MODELQ_GRPC_MAX_MESSAGE_MB: '1' });
    const c = await serve(p, true, { 'grpc.max_send_message_length': 8 << 20 });
    const big = { ...request, inputs: [{ name: 'input', datatype: 'FP32', shape: [300_000, 4] }], raw_input_contents: [Buffer.alloc(300_000 * 16)] };
    const e = await c.call('ModelInfer', big).then(
      () => null,
      (err: grpc.ServiceError) => err,
    );
    expect(e?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e?.details).toMatch(/larger than max/);
    // The server still answers on the same connection.
    expect((await c.call<{ id: string }>('ModelInfer', request)).id).toBe('r-1');
  });

  it("counts a handed-over call against the client's own address, whatever forwarding header the client sends", async () => {
    const p = await start({ MODELQ_RATE_LIMIT: '3/m' });
    const c = await serve(p, true);
    const forged = new grpc.Metadata();
    forged.set(PEER_HEADER, 'guess 10.9.8.7:1');
    // Called until refused: with the forged address counted, REST from here would keep its allowance.
    let refused = false;
    for (let i = 0; i < 5 && !refused; i++)
      refused = await c.call('ServerMetadata', {}, forged).then(
        () => false,
        (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED,
      );
    expect(refused).toBe(true);
    // The calls were counted for 127.0.0.1, as REST's requests from here are.
    expect((await fetch(`${p.url}/v2`)).status).toBe(429);
  });
});

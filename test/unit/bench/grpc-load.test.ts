// The gRPC load client speaks HTTP/2 over a plain socket (bench/lib/load.ts): against a grpc-js
// server it must count answered calls as OK and trailers-only errors as errors, and carry messages
// larger than a frame and than the server's first flow-control window.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGrpcLoad } from '../../../bench/lib/load.ts';

const raw = (b: Buffer) => b;
const method = {
  path: '/t.T/Call',
  requestStream: false,
  responseStream: false,
  requestSerialize: raw,
  requestDeserialize: raw,
  responseSerialize: raw,
  responseDeserialize: raw,
};

describe('runGrpcLoad', () => {
  const server = new grpc.Server();
  let address = '';
  const sizes: number[] = [];

  beforeAll(async () => {
    server.addService({ Call: method } as unknown as grpc.ServiceDefinition, {
      // First byte 1: refused; otherwise an answer as long as the request's second byte says (KiB).
      Call: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        sizes.push(call.request.length);
        if (call.request[0] === 1) return cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'no' });
        cb(null, Buffer.alloc((call.request[1] ?? 0) * 1024, 7));
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });
  afterAll(() => server.forceShutdown());

  const load = (message: Buffer, concurrency = 8) => runGrpcLoad({ address, method: '/t.T/Call', message, concurrency, durationMs: 600 });

  it('counts answered calls', async () => {
    const r = await load(Buffer.from([0, 2]));
    expect(r.errors).toBe(0);
    expect(r.requests).toBeGreaterThan(20);
    expect(r.p50Ms).toBeGreaterThan(0);
  });

  it('counts refusals (trailers only) as errors', async () => {
    const r = await load(Buffer.from([1]));
    expect(r.requests).toBe(0);
    expect(r.errors).toBeGreaterThan(20);
    expect(r.firstError).toBe('NOT_OK');
  });

  it('splits a large message into frames and waits for the window of the connection', async () => {
    sizes.length = 0;
    const big = Buffer.alloc(100_000, 3);
    big[0] = 0;
    big[1] = 64; // a 64 KiB answer: more than the server's first window toward the client, too
    const r = await load(big, 16);
    expect(r.errors).toBe(0);
    expect(r.requests).toBeGreaterThan(5);
    expect(new Set(sizes)).toEqual(new Set([100_000]));
  });
});

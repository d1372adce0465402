// inference.GRPCInferenceService: the Open Inference Protocol over gRPC, served by the producer
// beside its HTTP API, with the same keys and scopes (`authorization: Bearer` metadata), rate limit,
// metrics and audit lines, and the same inference service behind ModelInfer and ModelStreamInfer.
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { KeyRing, Scope } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { readWorkerStats } from '../../core/stats.ts';
import type { ProducerDeps } from '../deps.ts';
import { metricsFor } from '../metrics.ts';
import { assertReadable } from '../model-access.ts';
import { modelMetadata, SERVER_VERSION } from '../inference/metadata.ts';
import { inferenceFor, type Caller } from '../inference/service.ts';
import { callGate, type GateCall } from './call-gate.ts';
import { startLeanServer, type UnaryCall } from './lean.ts';
import { withFastCodec } from './codec.ts';
import { grpcInfer, type ModelInferRequest, type ModelInferResponse } from './infer.ts';
import { VERSION_HEADER } from '../../core/routing.ts';
import { toGrpcStatus } from './status.ts';
import { streamInfer } from './stream.ts';
import { auditStreamFor } from '../routes/audit.ts';

export const PROTO_PATH = path.join(import.meta.dirname, 'open_inference_grpc.proto');

/** keepCase: the protocol's field names; longs as numbers (shapes, int64 contents); oneofs name the chosen parameter. */
export const PROTO_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: false, oneofs: true };

/** The service as proto-loader defines it, with the hand codec of codec.ts in front for ModelInfer and ModelStreamInfer. */
export function loadService(): grpc.ServiceDefinition {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)) as unknown as {
    inference: { GRPCInferenceService: { service: grpc.ServiceDefinition } };
  };
  return withFastCodec({ ...pkg.inference.GRPCInferenceService.service });
}

export interface GrpcServerOptions {
  /** Port to listen on; 0 picks a free one (tests). */
  port: number;
  /** Address to bind. Default: MODELQ_BIND (127.0.0.1 unless configured). */
  host?: string;
  keys: KeyRing;
}

export interface RunningGrpcServer {
  port: number;
  close(): Promise<void>;
}

/** grpc-js takes `host:port`, an IPv6 address in brackets. */
const hostPart = (host: string) => (net.isIPv6(host) ? `[${host}]` : host);

export async function startGrpcServer(d: ProducerDeps, o: GrpcServerOptions): Promise<RunningGrpcServer> {
  const host = o.host ?? d.cfg.MODELQ_BIND;
  if (!d.cfg.MODELQ_GRPC_LEAN) {
    const { server, port } = await bindGrpcJs(d, o.keys, `${hostPart(host)}:${o.port}`);
    return { port, close: () => shutdown(server) };
  }
  // The lean server listens; grpc-js answers what it hands over, on a loopback port of its own.
  const secret = crypto.randomBytes(16).toString('hex');
  const { server, port, modelInfer } = await bindGrpcJs(d, o.keys, '127.0.0.1:0', secret);
  const service = loadService() as unknown as Record<string, { requestDeserialize(b: Buffer): unknown; responseSerialize(v: unknown): Buffer }>;
  const lean = await startLeanServer({
    host,
    port: o.port,
    maxBytes: d.cfg.MODELQ_GRPC_MAX_MESSAGE_MB * 1024 * 1024,
    upstream: `http://127.0.0.1:${port}`,
    peerSecret: secret,
    modelInfer,
    codec: service.ModelInfer!,
  });
  return {
    port: lean.port,
    close: async () => {
      await lean.close();
      await shutdown(server);
    },
  };
}

async function bindGrpcJs(d: ProducerDeps, keys: KeyRing, address: string, peerSecret?: string) {
  const maxBytes = d.cfg.MODELQ_GRPC_MAX_MESSAGE_MB * 1024 * 1024;
  // channelz (grpc-js's per-call introspection, on by default) cost about 30% of the server's CPU
  // per call in an A/B here (200-280 vs 140-200 us); nothing in modelq reads it.
  const server = new grpc.Server({ 'grpc.max_receive_message_length': maxBytes, 'grpc.max_send_message_length': maxBytes, 'grpc.enable_channelz': 0 });
  const h = handlers(d, keys, peerSecret);
  server.addService(loadService(), h.methods as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)));
  });
  return { server, port, modelInfer: h.modelInfer };
}

const shutdown = (server: grpc.Server) =>
  new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 5000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });

type Handler = (req: never, call: GateCall, caller: Caller) => Promise<unknown>;

function handlers(d: ProducerDeps, keys: KeyRing, peerSecret?: string) {
  const service = inferenceFor(d);
  const metrics = metricsFor(d);
  const stream = auditStreamFor(d);
  const gate = callGate(
    d,
    keys,
    (f) =>
      void stream
        .append({ actor: f.tenant, keyId: f.keyId, action: `GRPC ${f.route}`, target: f.route, status: f.status })
        .catch((e: Error) => d.logger.warn({ err: e.message }, 'audit entry not written to the stream')),
    peerSecret,
  );
  const ref = (name: string, version?: string) => (version ? `${name}@${version}` : name);
  // scope null: answered without a key, like /v2/health/*.
  const unaryCall =
    (method: string, scope: Scope | null, fn: Handler, trailer?: (r: never) => grpc.Metadata): UnaryCall =>
    (request, call, reply) => {
      const done = metrics.startGrpc(method);
      const run = async () => {
        if (d.redis.status !== 'ready' && method !== 'ServerLive') throw new AppError('unavailable', 'Redis is unavailable; try again shortly', true);
        const caller = gate.enter(method, scope, call);
        // MODELQ_RATE_LIMIT as on the HTTP routes (the same count); inference is counted by the
        // inference service, health calls are not counted (as /v2/health/* is not).
        if (scope !== null && scope !== 'infer') await service.rateLimit?.check(caller.client);
        return fn(request as never, call, caller);
      };
      run().then(
        (r) => {
          done('OK');
          reply(null, r, trailer?.(r as never));
        },
        (e: Error) => {
          const st = toGrpcStatus(e, d);
          done(grpc.status[st.code ?? grpc.status.INTERNAL]);
          reply(st);
        },
      );
    };
  const unary = (method: string, scope: Scope | null, fn: Handler, trailer?: (r: never) => grpc.Metadata): grpc.handleUnaryCall<unknown, unknown> => {
    const c = unaryCall(method, scope, fn, trailer);
    return (call, callback) => c(call.request, call, (st, r, t) => (st ? callback(st) : callback(null, r, t)));
  };
  // The version that answered, also as trailing metadata: on a weighted alias it is chosen per request.
  const modelInfer = unaryCall(
    'ModelInfer',
    'infer',
    (req: ModelInferRequest, _call, caller) => grpcInfer(service, req, caller),
    (r: ModelInferResponse) => {
      const m = new grpc.Metadata();
      m.set(VERSION_HEADER, r.model_version);
      return m;
    },
  );
  const methods: Record<string, grpc.handleUnaryCall<unknown, unknown> | grpc.handleBidiStreamingCall<unknown, unknown>> = {
    ServerLive: unary('ServerLive', null, async () => ({ live: true })),
    ServerReady: unary('ServerReady', null, async () => ({
      ready: await d.redis.ping().then(
        () => true,
        () => false,
      ),
    })),
    ServerMetadata: unary('ServerMetadata', 'read', async () => ({ name: 'modelq', version: SERVER_VERSION, extensions: [] })),
    ModelMetadata: unary('ModelMetadata', 'read', async (req: { name: string; version?: string }, _call, { who }) => {
      await assertReadable(d.registry, req.name, who); // another tenant's private model is "not found"
      return modelMetadata(d.registry, await d.registry.resolve(ref(req.name, req.version)));
    }),
    // Ready: the version exists and at least one live worker consumes the infer queue.
    ModelReady: unary('ModelReady', 'read', async (req: { name: string; version?: string }, _call, { who }) => {
      await assertReadable(d.registry, req.name, who);
      await d.registry.resolve(ref(req.name, req.version));
      const workers = await readWorkerStats(d.redis, d.prefix);
      return { ready: workers.some((w) => w.queues.includes('infer')) };
    }),
    ModelInfer: (call, callback) => modelInfer(call.request, call, (st, r, t) => (st ? callback(st) : callback(null, r, t))),
    ModelStreamInfer: streamInfer(d, service, metrics, gate),
  };
  return { methods, modelInfer };
}

// A grpc-js client of inference.GRPCInferenceService for the tests, from the repo's own .proto.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { PROTO_OPTIONS, PROTO_PATH } from '../../producer/grpc/server.ts';

export type Unary = <T = any>(method: string, request: object, metadata?: grpc.Metadata) => Promise<T>; // eslint-disable-line @typescript-eslint/no-explicit-any

type UnaryFn = (request: object, metadata: grpc.Metadata, callback: (e: grpc.ServiceError | null, r: unknown) => void) => void;

export interface InferenceClient {
  call: Unary;
  /** A unary call that also gives the trailing metadata the server sent with its answer. */
  callWithTrailer<T = any>(method: string, request: object, metadata?: grpc.Metadata): Promise<{ response: T; trailer: grpc.Metadata }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** A bidirectional call (ModelStreamInfer): write requests, read answers, end(). */
  stream(method: string, metadata?: grpc.Metadata): grpc.ClientDuplexStream<object, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close(): void;
}

export function inferenceClient(address: string, options: grpc.ChannelOptions = {}): InferenceClient {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)) as unknown as {
    inference: { GRPCInferenceService: new (addr: string, creds: grpc.ChannelCredentials, opts: grpc.ChannelOptions) => grpc.Client };
  };
  const client = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), options) as unknown as Record<string, UnaryFn> &
    grpc.Client;
  const call: Unary = (method, request, metadata = new grpc.Metadata()) =>
    new Promise((resolve, reject) => {
      client[method]!.call(client, request, metadata, (e, r) => (e ? reject(e) : resolve(r as never)));
    });
  const stream = (method: string, metadata = new grpc.Metadata()) =>
    (client[method] as unknown as (m: grpc.Metadata) => grpc.ClientDuplexStream<object, unknown>).call(client, metadata);
  const callWithTrailer = <T>(method: string, request: object, metadata = new grpc.Metadata()) =>
    new Promise<{ response: T; trailer: grpc.Metadata }>((resolve, reject) => {
      let response: T | undefined;
      const c = (client[method] as unknown as (...a: unknown[]) => grpc.ClientUnaryCall).call(client, request, metadata, (e: Error | null, r: T) => {
        if (e) reject(e);
        else response = r;
      });
      c.on('status', (st: grpc.StatusObject) => {
        if (st.code === grpc.status.OK) setImmediate(() => resolve({ response: response as T, trailer: st.metadata }));
      });
    });
  return { call, callWithTrailer, stream, close: () => client.close() };
}

/** Metadata carrying `authorization: Bearer <key>`. */
export function bearer(key: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${key}`);
  return m;
}

/** The rejection's gRPC status code, or a marker when the call did not fail. */
export async function codeOf(p: Promise<unknown>): Promise<grpc.status | 'ok'> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return (e as grpc.ServiceError).code;
  }
}

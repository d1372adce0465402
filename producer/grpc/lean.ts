// The lean gRPC server: node:http2 on the gRPC port, answering unary ModelInfer itself (the
// 5-byte length prefix and the message read and written here, the request decoded by codec.ts with
// raw_input_contents as views of the received bytes) and handing every other call, byte for byte,
// to grpc-js on a loopback port (proxy.ts). grpc-js's per-call machinery (interceptor chain, its
// stream decoder, metadata objects, status and deadline bookkeeping) was the largest part of the
// producer's CPU per gRPC call after the codec (bench/profile-online.ts, BENCH_PROTOCOL=grpc).
// What the fast path does not take exactly as grpc-js would (a compressed message, a content type
// other than application/grpc) goes to grpc-js too. MODELQ_GRPC_LEAN=false turns it off.
import http2 from 'node:http2';
import net from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import type { GateCall } from './call-gate.ts';
import { encodeInferResponse } from './codec.ts';
import type { ModelInferResponse } from './infer.ts';
import { proxyTo } from './proxy.ts';

/** A unary method's answer, or its status: what grpc-js's callback and the lean server both send. */
export type Reply = (st: Partial<grpc.ServiceError> | null, value?: unknown, trailer?: grpc.Metadata) => void;
/** One unary call, from its decoded request to its reply, for whichever server read it (server.ts). */
export type UnaryCall = (request: unknown, call: GateCall, reply: Reply) => void;

const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';
const { HTTP2_HEADER_PATH, HTTP2_HEADER_CONTENT_TYPE, HTTP2_HEADER_STATUS } = http2.constants;

const RESPONSE_HEADERS = {
  [HTTP2_HEADER_STATUS]: 200,
  [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
  'grpc-encoding': 'identity',
};

export interface LeanServerOptions {
  host: string;
  port: number;
  /** Largest message received or sent (MODELQ_GRPC_MAX_MESSAGE_MB), as grpc-js enforces it. */
  maxBytes: number;
  /** grpc-js's loopback address (`http://127.0.0.1:port`), for every call not answered here. */
  upstream: string;
  /** Proves a forwarded peer address to grpc-js's call gate (call-gate.ts PEER_HEADER). */
  peerSecret: string;
  modelInfer: UnaryCall;
  /** proto-loader's ModelInfer codec, for what codec.ts's hand decoder and encoder leave to it. */
  codec: { requestDeserialize(b: Buffer): unknown; responseSerialize(v: unknown): Buffer };
}

/** grpc-timeout units in ms. */
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** A call's address as grpc-js's getPeer() says it (`1.2.3.4:5`, `[::1]:5`). */
function peerOf(socket: net.Socket | undefined): string {
  const a = socket?.remoteAddress ?? '';
  return `${net.isIPv6(a) ? `[${a}]` : a}:${socket?.remotePort ?? 0}`;
}

/** The request headers as the call gate reads metadata (binary `-bin` values decoded as grpc-js does). */
function metadataOf(headers: http2.IncomingHttpHeaders): GateCall['metadata'] {
  return {
    get(key) {
      const v = headers[key];
      if (v === undefined) return [];
      if (!key.endsWith('-bin')) return Array.isArray(v) ? v : [v];
      return (Array.isArray(v) ? v : v.split(',')).map((x) => Buffer.from(x.trim(), 'base64'));
    },
  };
}

/** A status as trailers (grpc-js's form: the message URI-encoded, custom metadata beside it). */
function statusHeaders(st: Partial<grpc.ServiceError>): http2.OutgoingHttpHeaders {
  return { 'grpc-status': String(st.code ?? Status.UNKNOWN), 'grpc-message': encodeURI(st.details ?? ''), ...(st.metadata?.toHttp2Headers() ?? {}) };
}

export async function startLeanServer(o: LeanServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  // grpc-js's server settings: no session memory cap (big tensors in many streams), its stream count.
  const server = http2.createServer({ maxSessionMemory: Number.MAX_SAFE_INTEGER });
  const proxy = proxyTo(o.upstream, o.peerSecret);
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {}); // a session's error is followed by its close
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {}); // likewise: a reset stream closes, and its call sees `cancelled`
    const type = headers[HTTP2_HEADER_CONTENT_TYPE];
    const plain = typeof type === 'string' && (type === 'application/grpc' || type.startsWith('application/grpc+proto'));
    const encoding = headers['grpc-encoding'];
    if (headers[HTTP2_HEADER_PATH] !== MODEL_INFER || !plain || (encoding !== undefined && encoding !== 'identity')) {
      return proxy(stream, headers, peerOf(stream.session?.socket as net.Socket | undefined));
    }
    serveModelInfer(stream, headers, o);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        // As grpc-js's tryShutdown: no new sessions, the open ones finish their calls (GOAWAY), then
        // anything left after 5 s is cut.
        const force = setTimeout(() => {
          for (const s of sessions) s.destroy();
        }, 5000);
        server.close(() => {
          clearTimeout(force);
          proxy.close();
          resolve();
        });
        for (const s of sessions) s.close();
      }),
  };
}

/** One unary ModelInfer call on `stream`: one length-prefixed message in, one answer or a status out. */
function serveModelInfer(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, o: LeanServerOptions) {
  let answered = false;
  const fail = (code: Status, details: string, metadata?: grpc.Metadata) => {
    if (answered || stream.destroyed || stream.closed) return;
    answered = true;
    // Trailers-only: the status in the one HEADERS frame, as grpc-js answers a call that fails before any message.
    stream.respond({ ...RESPONSE_HEADERS, ...statusHeaders({ code, details, metadata }) }, { endStream: true });
  };
  let deadline: NodeJS.Timeout | undefined;
  const timeout = headers['grpc-timeout'];
  if (typeof timeout === 'string') {
    const m = /^(\d{1,8})([HMSmun])$/.exec(timeout);
    if (m) deadline = setTimeout(() => fail(Status.DEADLINE_EXCEEDED, 'Deadline exceeded'), Number(m[1]) * UNIT_MS[m[2]!]!);
  }
  stream.once('close', () => clearTimeout(deadline));

  const chunks: Buffer[] = [];
  let got = 0;
  stream.on('data', (c: Buffer) => {
    if (answered) return;
    chunks.push(c);
    got += c.length;
    // The prefix says the length: past the limit, refuse before the rest arrives.
    const head = chunks[0]!.length >= 5 ? chunks[0]! : got >= 5 ? Buffer.concat(chunks) : undefined;
    const size = head ? head.readUInt32BE(1) : 0;
    // Bytes past one message of the largest size are refused too (a unary call has one message).
    if (size > o.maxBytes || got > o.maxBytes + 5) {
      fail(Status.RESOURCE_EXHAUSTED, `Received message larger than max (${Math.max(size, got - 5)} vs ${o.maxBytes})`);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      chunks.length = 0;
    }
  });
  stream.on('end', () => {
    if (answered) return;
    const frame = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, got);
    chunks.length = 0;
    if (frame.length < 5) return fail(Status.UNIMPLEMENTED, 'received no request message for a unary call');
    if (frame[0] !== 0) return fail(Status.INTERNAL, 'a compressed message without grpc-encoding'); // as grpc-js refuses it
    const size = frame.readUInt32BE(1);
    if (frame.length !== 5 + size) {
      return fail(Status.INTERNAL, frame.length < 5 + size ? 'the request message was cut short' : 'more than one request message for a unary call');
    }
    let request: unknown;
    try {
      request = decodeRequest(frame.subarray(5), o);
    } catch (e) {
      return fail(Status.INTERNAL, `the request message did not decode: ${(e as Error).message}`);
    }
    const session = stream.session;
    const call: GateCall = {
      metadata: metadataOf(headers),
      getPeer: () => peerOf(session?.socket as net.Socket | undefined),
      get cancelled() {
        return stream.destroyed || stream.closed || answered;
      },
    };
    o.modelInfer(request, call, (st, value, trailer) => {
      if (st) return fail(st.code ?? Status.UNKNOWN, st.details ?? '', st.metadata);
      if (answered || stream.destroyed || stream.closed) return;
      let frame: Buffer;
      try {
        // The hand encoder leaves room for the prefix; proto-loader's bytes are copied behind one.
        frame = encodeInferResponse(value as ModelInferResponse, 5) ?? Buffer.concat([Buffer.alloc(5), o.codec.responseSerialize(value)]);
      } catch (e) {
        return fail(Status.INTERNAL, `the answer did not encode: ${(e as Error).message}`);
      }
      const size = frame.length - 5;
      if (size > o.maxBytes) return fail(Status.RESOURCE_EXHAUSTED, `Sent message larger than max (${size} vs. ${o.maxBytes})`);
      answered = true;
      frame[0] = 0;
      frame.writeUInt32BE(size, 1);
      const trailers = trailer ? trailer.toHttp2Headers() : {};
      trailers['grpc-status'] = '0';
      trailers['grpc-message'] = 'OK';
      stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers(trailers));
      stream.end(frame);
    });
  });
}

/** The service's ModelInfer decoder (codec.ts's hand decoder first; it gives views into `message`). */
const decodeRequest = (message: Buffer, o: LeanServerOptions) => o.codec.requestDeserialize(message);

// Closed-loop load generators: N virtual clients, each sending the same request back-to-back (HTTP:
// a POST over its own keep-alive socket; gRPC: a unary call on one shared HTTP/2 channel, as gRPC
// clients do). They measure; they never assert. They run in the bench process, so the server under
// test must live in another process.
import net from 'node:net';
import http2 from 'node:http2';
import { status as grpcStatus } from '@grpc/grpc-js';

export interface LoadOptions {
  /** Full URL to POST to, e.g. http://127.0.0.1:8080/v2/models/m/infer. */
  url: string;
  /** JSON request body, sent as is with content-type application/json. */
  body: string;
  /** Virtual clients, each with at most one request in flight. */
  concurrency: number;
  /** Length of the measured window. */
  durationMs: number;
  /** Load sent before the measured window starts; its requests are not counted. Default 0. */
  warmupMs?: number;
  /** A request slower than this counts as an error and its socket is dropped. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** After the window closes, how long to wait for requests still in flight. Default 5 000 ms. */
  drainMs?: number;
}

export interface LoadResult {
  /** 2xx answers completed inside the measured window. */
  requests: number;
  /** Non-2xx answers, socket errors and timeouts completed inside the measured window. */
  errors: number;
  /** requests / measured seconds. */
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** Status of the first error seen in the window (for a hint when errors > 0): "503", "ECONNRESET"... */
  firstError?: string;
}

interface Outcome {
  ok: boolean;
  status: string;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const LAST_CHUNK = Buffer.from('\r\n0\r\n\r\n');

/**
 * One virtual client's keep-alive connection, speaking just enough HTTP/1.1: a request built once,
 * and each response framed by its Content-Length (or chunked encoding). Node's http client spent
 * 0.15-0.3 ms of CPU per request here, on the same two cores as the servers under test; this
 * spends a fraction, so the figures say more about the servers and less about the client.
 */
class Connection {
  private socket?: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private pending?: { resolve: (o: Outcome) => void; timer: NodeJS.Timeout };

  constructor(
    private readonly url: URL,
    private readonly request: Buffer,
    private readonly timeoutMs: number,
  ) {}

  send(): Promise<Outcome> {
    return new Promise((resolve) => {
      if (!this.socket) this.connect();
      this.buf = Buffer.alloc(0);
      this.pending = { resolve, timer: setTimeout(() => this.fail('ETIMEDOUT'), this.timeoutMs) };
      this.socket!.write(this.request);
    });
  }

  close() {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connect() {
    const s = net.connect(Number(this.url.port || 80), this.url.hostname);
    s.setNoDelay(true);
    s.on('data', (c: Buffer) => this.onData(c));
    s.on('error', (e: NodeJS.ErrnoException) => this.fail(e.code ?? e.message));
    // A server may close an idle keep-alive connection: the next request opens a new one.
    s.on('close', () => {
      if (this.socket === s) this.fail('ECONNRESET');
    });
    this.socket = s;
  }

  private fail(status: string) {
    this.close();
    this.settle({ ok: false, status });
  }

  private settle(o: Outcome) {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(o);
  }

  private onData(chunk: Buffer) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const head = this.buf.indexOf(HEAD_END);
    if (head < 0 || !this.pending) return;
    const text = this.buf.toString('latin1', 0, head);
    const status = Number(text.slice(9, 12));
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text);
    let complete: boolean;
    if (length) complete = this.buf.length >= head + 4 + Number(length[1]);
    else if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(text)) complete = this.buf.indexOf(LAST_CHUNK, head) >= 0;
    else complete = status === 204 || status === 304 || status < 200;
    if (!complete) return;
    if (/\r\nconnection:[ \t]*close/i.test(text)) this.close();
    this.settle({ ok: status >= 200 && status < 300, status: String(status) });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of an ascending array, in the array's unit; 0 when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const url = new URL(o.url);
  const body = Buffer.from(o.body);
  const request = Buffer.concat([
    Buffer.from(
      `POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n`,
    ),
    body,
  ]);
  return closedLoop(() => new Connection(url, request, o.requestTimeoutMs ?? 30_000), o);
}

export interface GrpcLoadOptions extends Omit<LoadOptions, 'url' | 'body'> {
  /** host:port of the gRPC server. */
  address: string;
  /** Full method path, e.g. /inference.GRPCInferenceService/ModelInfer. */
  method: string;
  /** The request message, serialized once (answers are not decoded either, as the HTTP side does not parse them). */
  message: Buffer;
}

/**
 * gRPC unary calls over node:http2 directly, as one virtual client per stream on one shared
 * connection (as gRPC clients multiplex): the request framed once (5-byte gRPC prefix), the answer
 * judged by its grpc-status. @grpc/grpc-js as the load client spent about 0.8 ms of CPU per call
 * here, this 0.1-0.25 ms, on the cores the server under test needs (the HTTP client above exists
 * for the same reason).
 */
export async function runGrpcLoad(o: GrpcLoadOptions): Promise<LoadResult> {
  const session = http2.connect(`http://${o.address}`);
  session.on('error', () => {}); // each call reports its own failure
  const timeoutMs = o.requestTimeoutMs ?? 30_000;
  const frame = Buffer.alloc(5 + o.message.length);
  frame.writeUInt32BE(o.message.length, 1);
  o.message.copy(frame, 5);
  const headers = { ':method': 'POST', ':path': o.method, 'content-type': 'application/grpc', te: 'trailers' };
  const sender = {
    send: () =>
      new Promise<Outcome>((resolve) => {
        let status: string | undefined;
        const stream = session.request(headers, { endStream: false });
        const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
        // Trailers-only answers (errors) carry grpc-status in the headers.
        stream.on('response', (h) => {
          if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
        });
        stream.on('trailers', (t) => {
          status = String(t['grpc-status']);
        });
        stream.on('data', () => {});
        stream.on('error', (e: NodeJS.ErrnoException) => {
          status ??= e.code ?? 'ERROR';
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve(status === '0' ? { ok: true, status: 'OK' } : { ok: false, status: status === undefined ? 'ETIMEDOUT' : grpcName(status) });
        });
        stream.end(frame);
      }),
    close: () => {},
  };
  try {
    return await closedLoop(() => sender, o);
  } finally {
    session.close();
  }
}

const grpcName = (code: string) => grpcStatus[Number(code)] ?? code;

interface Sender {
  send(): Promise<Outcome>;
  close(): void;
}

async function closedLoop(newSender: () => Sender, o: Pick<LoadOptions, 'concurrency' | 'durationMs' | 'warmupMs' | 'drainMs'>): Promise<LoadResult> {
  const warmupMs = o.warmupMs ?? 0;
  const drainMs = o.drainMs ?? 5_000;

  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;

  const connections: Sender[] = [];
  const client = async () => {
    const conn = newSender();
    connections.push(conn);
    while (performance.now() < windowEnd) {
      const start = performance.now();
      const r = await conn.send();
      const end = performance.now();
      // A request counts in the window it completes in, and only if it also started after warm-up.
      if (start >= windowStart && end <= windowEnd) {
        if (r.ok) latencies.push(end - start);
        else {
          errors++;
          firstError ??= r.status;
        }
      }
      // A refused connection answers in microseconds; don't spin the CPU the server needs.
      if (!r.ok && !/^\d+$/.test(r.status)) await sleep(5);
    }
  };

  const clients = Promise.all(Array.from({ length: o.concurrency }, client));
  // Bounded: whatever is still in flight drainMs after the window is cut off.
  let drainTimer: NodeJS.Timeout | undefined;
  const cutoff = new Promise<void>((r) => {
    drainTimer = setTimeout(r, windowEnd - performance.now() + drainMs);
  });
  await Promise.race([clients, cutoff]);
  clearTimeout(drainTimer);
  for (const c of connections) c.close();

  const sorted = Float64Array.from(latencies).sort();
  const seconds = o.durationMs / 1000;
  return {
    requests: latencies.length,
    errors,
    rps: latencies.length / seconds,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    ...(firstError === undefined ? {} : { firstError }),
  };
}

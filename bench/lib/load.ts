// Closed-loop load generators: N virtual clients, each sending the same request back-to-back (HTTP:
// a POST over its own keep-alive socket; gRPC: a unary call on one shared HTTP/2 channel, as gRPC
// clients do). They measure; they never assert. They run in the bench process, so the server under
// test must live in another process.
import net from 'node:net';

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

// HTTP/2 frame types and flags the gRPC load client speaks (RFC 9113).
const DATA = 0x0;
const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const ACK = 0x1;
const PADDED = 0x8;
const MAX_WINDOW = 2 ** 31 - 1;

function h2Frame(type: number, flags: number, stream: number, payload: Buffer | number = 0): Buffer {
  const len = typeof payload === 'number' ? payload : payload.length;
  const f = Buffer.allocUnsafe(9 + (typeof payload === 'number' ? 0 : len));
  f.writeUIntBE(len, 0, 3);
  f[3] = type;
  f[4] = flags;
  f.writeUInt32BE(stream, 5);
  if (typeof payload !== 'number') payload.copy(f, 9);
  return f;
}

/** An HPACK integer with an n-bit prefix (RFC 7541 5.1), its first byte or-ed with `top`. */
function hpackInt(n: number, bits: number, top: number): number[] {
  const max = (1 << bits) - 1;
  if (n < max) return [top | n];
  const out = [top | max];
  n -= max;
  while (n >= 128) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const hpackString = (s: string) => [...hpackInt(Buffer.byteLength(s), 7, 0), ...Buffer.from(s)];

/**
 * The request headers of every call as one HPACK block without the dynamic table or Huffman codes
 * (so it is the same bytes each time, and the server's table never matters): :method POST and
 * :scheme http from the static table, the rest literal without indexing.
 */
function grpcHeaderBlock(authority: string, path: string): Buffer {
  return Buffer.from([
    0x83, // :method POST
    0x86, // :scheme http
    ...hpackInt(4, 4, 0),
    ...hpackString(path), // :path
    ...hpackInt(1, 4, 0),
    ...hpackString(authority), // :authority
    ...hpackInt(31, 4, 0),
    ...hpackString('application/grpc'), // content-type
    0x00,
    ...hpackString('te'),
    ...hpackString('trailers'),
  ]);
}

interface H2Call {
  resolve: (o: Outcome) => void;
  timer: NodeJS.Timeout;
  /** A gRPC message came (an OK unary answer carries one; an error is trailers only). */
  data: boolean;
  /** The request's bytes not sent yet (flow control), and what the server lets this stream send. */
  rest: Buffer;
  window: number;
}

/**
 * gRPC unary calls over one HTTP/2 connection, spoken over a plain socket: each call is a HEADERS
 * frame (one HPACK block made once) and a DATA frame holding the message framed once; an answer
 * counts as OK when a message came before the stream ended (grpc-js answers errors trailers-only),
 * so nothing is decoded. node:http2 as the client spent about 90 us of CPU per call here against the
 * HTTP client's 30 us, on the cores the servers under test need; this is about as cheap as the HTTP
 * client, so gRPC and REST figures compare the servers. It honours the server's flow control for
 * what it sends (a request's bytes wait for window), gives itself windows it never exhausts, answers SETTINGS
 * and PING, and fails the calls a GOAWAY or a closed socket leaves.
 */
class H2GrpcClient {
  private socket?: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private nextStream = 1;
  private readonly calls = new Map<number, H2Call>();
  /** What the server lets us send: on the connection, and per new stream (its SETTINGS_INITIAL_WINDOW_SIZE). */
  private connWindow = 65_535;
  private streamWindow = 65_535;
  private maxFrame = 16_384;
  /** Streams with request bytes left to send, oldest first. */
  private sending: number[] = [];
  private received = 0;
  private readonly block: Buffer;
  private readonly frame: Buffer;
  private closed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    path: string,
    message: Buffer,
    private readonly timeoutMs: number,
  ) {
    this.block = grpcHeaderBlock(`${host}:${port}`, path);
    this.frame = Buffer.alloc(5 + message.length);
    this.frame.writeUInt32BE(message.length, 1);
    message.copy(this.frame, 5);
  }

  send(): Promise<Outcome> {
    return new Promise((resolve) => this.start(resolve));
  }

  close() {
    this.closed = true;
    this.fail('closed');
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connect() {
    const s = net.connect(this.port, this.host);
    s.setNoDelay(true);
    s.on('data', (c: Buffer) => this.onData(c));
    s.on('error', () => {}); // 'close' follows
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = undefined;
      this.fail('ECONNRESET');
    });
    this.socket = s;
    this.buf = Buffer.alloc(0);
    this.nextStream = 1;
    this.sending = [];
    this.connWindow = this.streamWindow = 65_535;
    this.maxFrame = 16_384;
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(2, 0); // SETTINGS_ENABLE_PUSH
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(4, 6); // SETTINGS_INITIAL_WINDOW_SIZE
    settings.writeUInt32BE(MAX_WINDOW, 8);
    const grow = Buffer.alloc(4);
    grow.writeUInt32BE(MAX_WINDOW - 65_535, 0);
    s.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), h2Frame(SETTINGS, 0, 0, settings), h2Frame(WINDOW_UPDATE, 0, 0, grow)]));
  }

  private start(resolve: (o: Outcome) => void) {
    if (this.closed) return resolve({ ok: false, status: 'closed' });
    if (!this.socket) this.connect();
    const id = this.nextStream;
    this.nextStream += 2;
    const timer = setTimeout(() => {
      this.socket?.write(h2Frame(RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8]))); // CANCEL
      this.finish(id, { ok: false, status: 'ETIMEDOUT' });
    }, this.timeoutMs);
    this.calls.set(id, { resolve, timer, data: false, rest: this.frame, window: this.streamWindow });
    this.sending.push(id);
    this.pump([h2Frame(HEADERS, END_HEADERS, id, this.block)]);
  }

  /** Sends what the windows allow of the streams' request bytes, in one write with `out`. */
  private pump(out: Buffer[] = []) {
    const left: number[] = [];
    for (const id of this.sending) {
      const c = this.calls.get(id);
      if (!c) continue;
      while (c.rest.length) {
        const n = Math.min(c.rest.length, this.connWindow, c.window, this.maxFrame);
        if (n <= 0) break;
        out.push(h2Frame(DATA, n === c.rest.length ? END_STREAM : 0, id, c.rest.subarray(0, n)));
        c.rest = c.rest.subarray(n);
        this.connWindow -= n;
        c.window -= n;
      }
      if (c.rest.length) left.push(id);
    }
    this.sending = left;
    if (out.length) this.socket?.write(out.length === 1 ? out[0]! : Buffer.concat(out));
  }

  private finish(id: number, o: Outcome) {
    const c = this.calls.get(id);
    if (!c) return;
    this.calls.delete(id);
    clearTimeout(c.timer);
    c.resolve(o);
  }

  private fail(status: string, above = 0) {
    for (const id of [...this.calls.keys()]) if (id > above) this.finish(id, { ok: false, status });
  }

  private onData(chunk: Buffer) {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    while (this.buf.length - at >= 9) {
      const len = this.buf.readUIntBE(at, 3);
      if (this.buf.length - at < 9 + len) break;
      const type = this.buf[at + 3]!;
      const flags = this.buf[at + 4]!;
      const id = this.buf.readUInt32BE(at + 5) & MAX_WINDOW;
      const payload = this.buf.subarray(at + 9, at + 9 + len);
      at += 9 + len;
      this.onFrame(type, flags, id, payload);
    }
    this.buf = at === this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
  }

  private onFrame(type: number, flags: number, id: number, p: Buffer) {
    switch (type) {
      case DATA: {
        const pad = flags & PADDED ? p[0]! + 1 : 0;
        if (p.length - pad > 0) {
          const c = this.calls.get(id);
          if (c) c.data = true;
        }
        this.received += p.length;
        if (this.received > 1 << 30) {
          const inc = Buffer.alloc(4);
          inc.writeUInt32BE(this.received, 0);
          this.socket?.write(h2Frame(WINDOW_UPDATE, 0, 0, inc));
          this.received = 0;
        }
        if (flags & END_STREAM) this.finish(id, this.calls.get(id)?.data ? { ok: true, status: 'OK' } : { ok: false, status: 'NOT_OK' });
        return;
      }
      case HEADERS:
        // Trailers (or a trailers-only error): the call is over. Its grpc-status is not decoded:
        // a unary OK answer is the one that carried a message.
        if (flags & END_STREAM) this.finish(id, this.calls.get(id)?.data ? { ok: true, status: 'OK' } : { ok: false, status: 'NOT_OK' });
        return;
      case RST_STREAM:
        return this.finish(id, { ok: false, status: 'RST_STREAM' });
      case SETTINGS:
        if (flags & ACK) return;
        for (let k = 0; k + 6 <= p.length; k += 6) {
          const key = p.readUInt16BE(k);
          const value = p.readUInt32BE(k + 2);
          if (key === 4) {
            for (const c of this.calls.values()) c.window += value - this.streamWindow; // RFC 9113 6.9.2
            this.streamWindow = value;
          }
          if (key === 5) this.maxFrame = value;
        }
        this.socket?.write(h2Frame(SETTINGS, ACK, 0));
        return this.pump();
      case PING:
        if (!(flags & ACK)) this.socket?.write(h2Frame(PING, ACK, 0, p));
        return;
      case GOAWAY: {
        this.fail('GOAWAY', p.readUInt32BE(0) & MAX_WINDOW);
        const s = this.socket;
        this.socket = undefined; // new calls open a new connection
        s?.end();
        return;
      }
      case WINDOW_UPDATE: {
        const inc = p.readUInt32BE(0) & MAX_WINDOW;
        if (id === 0) this.connWindow += inc;
        else {
          const c = this.calls.get(id);
          if (c) c.window += inc;
        }
        return this.pump();
      }
    }
  }
}

/**
 * gRPC unary calls as one virtual client per stream on one shared HTTP/2 connection (as gRPC
 * clients multiplex), the request framed once (5-byte gRPC prefix), spoken by H2GrpcClient.
 * @grpc/grpc-js as the load client spent about 0.8 ms of CPU per call here, node:http2 about
 * 90 us, this about as much as the HTTP client (bench/profile-online.ts prints it).
 */
export async function runGrpcLoad(o: GrpcLoadOptions): Promise<LoadResult> {
  const [host, port] = [o.address.slice(0, o.address.lastIndexOf(':')), Number(o.address.slice(o.address.lastIndexOf(':') + 1))];
  const client = new H2GrpcClient(host, port, o.method, o.message, o.requestTimeoutMs ?? 30_000);
  const sender = { send: () => client.send(), close: () => {} };
  try {
    return await closedLoop(() => sender, o);
  } finally {
    client.close();
  }
}

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

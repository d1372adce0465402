// Closed-loop HTTP load generator: N virtual clients, each sending the same POST back-to-back
// over its own keep-alive socket. It measures; it never asserts. Runs in the bench process, so the
// server under test must live in another process.
import http from 'node:http';

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

interface Outcome { ok: boolean; status: string }

function once(agent: http.Agent, url: URL, body: Buffer, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': body.length },
    }, (res) => {
      const status = res.statusCode ?? 0;
      res.on('data', () => {}); // drain so the socket goes back to the agent
      res.on('end', () => resolve({ ok: status >= 200 && status < 300, status: String(status) }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, status: e.code ?? e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, status: e.code ?? e.message }));
    req.end(body);
  });
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
  const warmupMs = o.warmupMs ?? 0;
  const timeoutMs = o.requestTimeoutMs ?? 30_000;
  const drainMs = o.drainMs ?? 5_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency });

  const t0 = performance.now();
  const windowStart = t0 + warmupMs;
  const windowEnd = windowStart + o.durationMs;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;

  const client = async () => {
    while (performance.now() < windowEnd) {
      const start = performance.now();
      const r = await once(agent, url, body, timeoutMs);
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
  const cutoff = new Promise<void>((r) => { drainTimer = setTimeout(r, windowEnd - performance.now() + drainMs); });
  await Promise.race([clients, cutoff]);
  clearTimeout(drainTimer);
  agent.destroy();

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

// Live figures per model version, for rollouts: answered requests, errors and a latency histogram,
// as counters in Redis that only grow. Each producer adds what it saw every flush; a reader takes two
// snapshots and subtracts, so "since this step began" needs no window bookkeeping.
import type { Redis } from 'ioredis';

/** Latency buckets: bucket i holds latencies below 0.1 ms * 1.25^(i+1); the last one holds the rest (~ 200 s). */
const BUCKETS = 66;
const BASE_MS = 0.1;
const GROWTH = 1.25;
const LOG_GROWTH = Math.log(GROWTH);

export const bucketOf = (ms: number): number => (ms <= BASE_MS ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log(ms / BASE_MS) / LOG_GROWTH)));
/** The upper edge of a bucket, in ms: what a percentile read from the histogram reports. */
export const bucketEdge = (i: number): number => BASE_MS * GROWTH ** (i + 1);

export interface Figures {
  requests: number;
  errors: number;
  /** Latency histogram: bucket index -> count. */
  latency: Record<number, number>;
  /** Top-1 classes of the answers (class -> rows): the version's output distribution. */
  classes?: Record<string, number>;
}
export const EMPTY_FIGURES: Figures = Object.freeze({ requests: 0, errors: 0, latency: Object.freeze({}) }) as Figures;

/** Distinct top-1 classes one process counts per version (as core/shadow-compare.ts MAX_OUTPUT_CLASSES). */
const MAX_CLASSES = 64;

export const figuresKey = (prefix: string, name: string, version: number) => `${prefix}:records:figures:${name}:${version}`;
/** Figures are kept a week after their last request. */
const TTL_MS = 7 * 24 * 3600 * 1000;

export async function readFigures(redis: Redis, prefix: string, name: string, version: number): Promise<Figures> {
  const h = await redis.hgetall(figuresKey(prefix, name, version));
  const latency: Record<number, number> = {};
  const classes: Record<string, number> = {};
  for (const [f, v] of Object.entries(h)) {
    if (f.startsWith('b')) latency[Number(f.slice(1))] = Number(v);
    else if (f.startsWith('c:')) classes[f.slice(2)] = Number(v);
  }
  return { requests: Number(h.n ?? 0), errors: Number(h.err ?? 0), latency, classes };
}

/** `now` minus `then` (an earlier snapshot of the same counters). */
export function diffFigures(now: Figures, then: Figures): Figures {
  const latency: Record<number, number> = {};
  for (const [b, n] of Object.entries(now.latency)) {
    const d = n - (then.latency[Number(b)] ?? 0);
    if (d > 0) latency[Number(b)] = d;
  }
  const classes: Record<string, number> = {};
  for (const [c, n] of Object.entries(now.classes ?? {})) {
    const d = n - (then.classes?.[c] ?? 0);
    if (d > 0) classes[c] = d;
  }
  return { requests: now.requests - then.requests, errors: now.errors - then.errors, latency, classes };
}

/** The latency percentile `q` (0..1) in ms, as the upper edge of its bucket; null without answers. */
export function percentileMs(f: Figures, q: number): number | null {
  const total = Object.values(f.latency).reduce((a, b) => a + b, 0);
  if (!total) return null;
  const want = Math.ceil(q * total);
  let seen = 0;
  for (const b of Object.keys(f.latency)
    .map(Number)
    .sort((a, c) => a - c)) {
    seen += f.latency[b]!;
    if (seen >= want) return bucketEdge(b);
  }
  return null;
}

/**
 * Counts answers in memory and adds them to Redis every `flushMs` (one pipeline per flush, not a
 * round trip per request). Counts of a failed flush are kept for the next one.
 */
export class FigureRecorder {
  private pending = new Map<
    string,
    { name: string; version: number; requests: number; errors: number; latency: Map<number, number>; classes: Map<string, number> }
  >();
  /** Classes seen per version (at most MAX_CLASSES; the rest count as "(other)"). */
  private readonly seen = new Map<string, Set<string>>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    flushMs: number,
  ) {
    this.timer = setInterval(() => void this.flush().catch(() => {}), flushMs);
    this.timer.unref();
  }

  /** One answered request (ok) or failed one, how long it took, and its rows' top-1 classes (core/shadow-compare.ts topClassesOf). */
  record(name: string, version: number, ms: number, ok: boolean, classes?: readonly string[]): void {
    const k = `${name}@${version}`;
    let p = this.pending.get(k);
    if (!p) this.pending.set(k, (p = { name, version, requests: 0, errors: 0, latency: new Map(), classes: new Map() }));
    p.requests++;
    if (!ok) p.errors++;
    else {
      const b = bucketOf(ms);
      p.latency.set(b, (p.latency.get(b) ?? 0) + 1);
    }
    if (!classes?.length) return;
    let seen = this.seen.get(k);
    if (!seen) this.seen.set(k, (seen = new Set()));
    for (const c0 of classes) {
      const c = seen.has(c0) ? c0 : seen.size < MAX_CLASSES ? (seen.add(c0), c0) : '(other)';
      p.classes.set(c, (p.classes.get(c) ?? 0) + 1);
    }
  }

  async flush(): Promise<void> {
    if (!this.pending.size) return;
    const batch = this.pending;
    this.pending = new Map();
    const m = this.redis.multi();
    for (const p of batch.values()) {
      const key = figuresKey(this.prefix, p.name, p.version);
      m.hincrby(key, 'n', p.requests);
      if (p.errors) m.hincrby(key, 'err', p.errors);
      for (const [b, n] of p.latency) m.hincrby(key, `b${b}`, n);
      for (const [c, n] of p.classes) m.hincrby(key, `c:${c}`, n);
      m.pexpire(key, TTL_MS);
    }
    try {
      await m.exec();
    } catch (e) {
      for (const [k, p] of batch) {
        const cur = this.pending.get(k);
        if (!cur) this.pending.set(k, p);
        else {
          cur.requests += p.requests;
          cur.errors += p.errors;
          for (const [b, n] of p.latency) cur.latency.set(b, (cur.latency.get(b) ?? 0) + n);
          for (const [c, n] of p.classes) cur.classes.set(c, (cur.classes.get(c) ?? 0) + n);
        }
      }
      throw e;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

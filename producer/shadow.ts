// Shadow traffic: a share of the requests of an alias with a shadow version run again on that version
// after the primary answered, never delaying or changing the answer. Mirrors wait in a bounded queue
// (dropped and counted when it is full) and run a few at a time; their outputs are compared with the
// primary's and counted per (primary, shadow) pair in Redis (core/shadow-compare.ts). They travel
// apart from primaries and run at low priority on workers, in their idle gaps (the service's
// mirrorLane, Engine.run): a mirror never queues a primary behind it, and one a worker has not
// started by its deadline is dropped and counted. Its latency then includes that wait.
import type { Redis } from 'ioredis';
import type { ErrorData } from '../core/errors.ts';
import type { WireTensor } from '../core/jobs/infer.ts';
import type { WireRequest, WireResponse } from '../core/jobs/online-wire.ts';
import type { Logger } from '../core/logger.ts';
import type { ServingTarget } from '../core/registry.ts';
import { boundedClass, compareOutputs, comparisonFields, comparisonKey, topClassesOf } from '../core/shadow-compare.ts';

/** Mirrors waiting at most, and running at once, per producer. */
export const SHADOW_QUEUE = 256;
export const SHADOW_CONCURRENCY = 4;
/**
 * Mirrors run on workers only in their idle gaps (the queue's shadow lane, low-priority engine runs):
 * one a worker has not started within this many ms is not run, and counts as dropped.
 */
export const SHADOW_DEADLINE_MS = 5000;
/** The BullMQ priority of mirrors on the bullmq transport: after every job without one. */
export const SHADOW_PRIORITY = 1000;
const TTL_MS = 7 * 24 * 3600 * 1000;
/** A worker's answer to a request whose deadline passed before it started (workers/inference/infer.ts runOne). */
const notStarted = (a: WireResponse) => {
  const e = a.ok ? undefined : (a.error as ErrorData | undefined); // undefined in a malformed answer
  return e?.code === 'timeout' && /before the request started/.test(e.message);
};

interface Mirror {
  primary: ServingTarget;
  shadow: ServingTarget;
  request: WireRequest;
  outputs: WireTensor[];
  primaryMs: number;
}

export class ShadowRunner {
  private readonly queue: Mirror[] = [];
  private running = 0;
  private pending = new Map<string, Map<string, number>>();
  /** Top-1 classes seen per pair side (bounded, core/shadow-compare.ts boundedClass). */
  private readonly classes = new Map<string, Set<string>>();
  private readonly timer: NodeJS.Timeout;
  /** Mirrors dropped on a full queue, since start (also counted in Redis per pair). */
  dropped = 0;

  constructor(
    private readonly run: (target: ServingTarget, request: WireRequest) => Promise<WireResponse>,
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
    flushMs: number,
    private readonly max = SHADOW_QUEUE,
  ) {
    this.timer = setInterval(() => void this.flush().catch(() => {}), flushMs);
    this.timer.unref();
  }

  /** Called after the primary answered: maybe queues a mirror; returns at once. */
  mirror(primary: ServingTarget, request: WireRequest, outputs: WireTensor[], primaryMs: number): void {
    const s = primary.shadow;
    if (!s || Math.random() >= s.fraction) return;
    if (this.queue.length >= this.max) {
      this.dropped++;
      this.count(primary, s.target, { dropped: 1 });
      return;
    }
    this.queue.push({ primary, shadow: s.target, request, outputs, primaryMs });
    this.pump();
  }

  private pump() {
    while (this.running < SHADOW_CONCURRENCY && this.queue.length) {
      const m = this.queue.shift()!;
      this.running++;
      const started = performance.now();
      this.run(m.shadow, m.request)
        .then(
          (a) => {
            // Not started before its deadline (no idle gap on a worker in time): dropped, not the shadow's error.
            if (notStarted(a)) return this.count(m.primary, m.shadow, { dropped: 1 });
            this.count(m.primary, m.shadow, comparisonFields(a.ok ? compareOutputs(m.outputs, a.outputs) : null, m.primaryMs, performance.now() - started));
            if (a.ok) this.countClasses(m, a.outputs);
          },
          (e: unknown) => {
            this.logger.debug({ err: (e as Error).message, model: m.shadow.model.name, version: m.shadow.model.version }, 'shadow request failed');
            this.count(m.primary, m.shadow, comparisonFields(null, 0, 0));
          },
        )
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }

  /** The two answers' top-1 classes, for the pair's output drift (`pc:<class>`, `sc:<class>`). */
  private countClasses(m: Mirror, shadowOutputs: WireTensor[]) {
    const fields: Record<string, number> = {};
    for (const [side, outputs] of [
      ['pc', m.outputs],
      ['sc', shadowOutputs],
    ] as const) {
      const k = `${m.primary.model.name}:${m.primary.model.version}:${m.shadow.model.version}:${side}`;
      let seen = this.classes.get(k);
      if (!seen) this.classes.set(k, (seen = new Set()));
      for (const c of topClassesOf(outputs)) {
        const f = `${side}:${boundedClass(seen, c)}`;
        fields[f] = (fields[f] ?? 0) + 1;
      }
    }
    this.count(m.primary, m.shadow, fields);
  }

  private count(primary: ServingTarget, shadow: ServingTarget, fields: Record<string, number>) {
    const key = comparisonKey(this.prefix, primary.model.name, primary.model.version, shadow.model.version);
    let p = this.pending.get(key);
    if (!p) this.pending.set(key, (p = new Map()));
    for (const [f, n] of Object.entries(fields)) p.set(f, (p.get(f) ?? 0) + n);
  }

  async flush(): Promise<void> {
    if (!this.pending.size) return;
    const batch = this.pending;
    this.pending = new Map();
    const m = this.redis.multi();
    for (const [key, fields] of batch) {
      for (const [f, n] of fields) m.hincrby(key, f, n);
      m.pexpire(key, TTL_MS);
    }
    await m.exec();
  }

  /** Mirrors queued or running (tests wait for 0). */
  get inFlight(): number {
    return this.queue.length + this.running;
  }
}

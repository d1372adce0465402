// Backpressure: the producer takes no more online work than it can hand on. Requests in flight are
// bounded per producer and per model (429 past either), and new work of any kind is refused with
// 503 while Redis is close to its maxmemory, before its writes start failing (noeviction).
import type { RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../../core/config.ts';
import { AppError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';

/** A refusal that tells the client when to come back (the Retry-After header, in seconds). */
export class Overloaded extends AppError {
  constructor(
    code: 'rate_limited' | 'unavailable',
    message: string,
    readonly retryAfterS: number,
  ) {
    super(code, message, true);
  }
}

/** Seconds for a Retry-After header, when the error carries one. */
export const retryAfterOf = (e: unknown): number | undefined => (e instanceof Overloaded ? e.retryAfterS : undefined);

/** Counts online requests in flight; `enter` refuses past the bounds and returns the release. */
export class InflightGate {
  private total = 0;
  private readonly perModel = new Map<string, number>();

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerModel: number,
  ) {}

  get inFlight() {
    return this.total;
  }

  enter(model: string): () => void {
    const n = this.perModel.get(model) ?? 0;
    if (this.total >= this.maxTotal)
      throw new Overloaded('rate_limited', `the producer has ${this.total} requests in flight (MODELQ_MAX_INFLIGHT=${this.maxTotal}); retry shortly`, 1);
    if (n >= this.maxPerModel)
      throw new Overloaded(
        'rate_limited',
        `model "${model}" has ${n} requests in flight on this producer (MODELQ_MAX_INFLIGHT_PER_MODEL=${this.maxPerModel}); retry shortly`,
        1,
      );
    this.total++;
    this.perModel.set(model, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = (this.perModel.get(model) ?? 1) - 1;
      if (left > 0) this.perModel.set(model, left);
      else this.perModel.delete(model);
    };
  }
}

/**
 * Redis's used_memory against its maxmemory, read at most every `intervalMs` in the background
 * (never on a request's path). No maxmemory set: never refuses (Redis then grows until the host
 * runs out, which the operator must bound).
 */
export class RedisMemoryGuard {
  private at = 0;
  private reading = false;
  private used = 0;
  private max = 0;

  constructor(
    private readonly redis: Redis,
    private readonly ratio: number,
    private readonly logger: Logger,
    private readonly intervalMs = 1000,
  ) {}

  /** The latest figures: bytes used and Redis's maxmemory (0: none). */
  get figures() {
    return { used: this.used, max: this.max };
  }

  /** Throws 503 when the last reading was over the bound; starts a new reading when the last is old. */
  check(): void {
    this.refresh();
    if (this.max > 0 && this.used > this.max * this.ratio) {
      throw new Overloaded(
        'unavailable',
        `Redis memory is ${Math.round((this.used / this.max) * 100)}% full (MODELQ_REDIS_MEMORY_HIGH=${this.ratio}); new work is refused until it drains`,
        5,
      );
    }
  }

  /** Reads INFO memory now (tests and start-up). */
  async read(): Promise<void> {
    const info = await this.redis.info('memory');
    const num = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    const wasOver = this.max > 0 && this.used > this.max * this.ratio;
    this.used = num('used_memory');
    this.max = num('maxmemory');
    this.at = Date.now();
    const over = this.max > 0 && this.used > this.max * this.ratio;
    if (over !== wasOver)
      this.logger.warn(
        { used: this.used, maxmemory: this.max, ratio: this.ratio },
        over ? 'Redis memory high: refusing new work' : 'Redis memory back under the bound',
      );
  }

  private refresh() {
    if (this.reading || Date.now() - this.at < this.intervalMs || this.redis.status !== 'ready') return;
    this.reading = true;
    this.read()
      .catch(() => {})
      .finally(() => {
        this.reading = false;
      });
  }
}

export interface Backpressure {
  gate: InflightGate;
  memory: RedisMemoryGuard;
  middleware: RequestHandler;
}

interface Deps {
  cfg: Config;
  redis: Redis;
  logger: Logger;
}
const perDeps = new WeakMap<Deps, Backpressure>();

/** One per producer (per deps): the online path and the express middleware share its counts. */
export function backpressureFor(d: Deps): Backpressure {
  let b = perDeps.get(d);
  if (b) return b;
  const gate = new InflightGate(d.cfg.MODELQ_MAX_INFLIGHT, d.cfg.MODELQ_MAX_INFLIGHT_PER_MODEL);
  const memory = new RedisMemoryGuard(d.redis, d.cfg.MODELQ_REDIS_MEMORY_HIGH, d.logger);
  // Anything that adds work or data (POST, PUT) is refused while Redis is nearly full; reads,
  // deletes and cancels (which free memory) still pass.
  const middleware: RequestHandler = (req, _res, next) => {
    if ((req.method === 'POST' || req.method === 'PUT') && !/\/cancel$/.test(req.path)) {
      try {
        memory.check();
      } catch (e) {
        return next(e);
      }
    }
    next();
  };
  perDeps.set(d, (b = { gate, memory, middleware }));
  return b;
}

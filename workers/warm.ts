// Models warm before traffic. A worker that serves online requests loads a new version on every
// engine thread when the registry announces it (Redis Pub/Sub, core/registry.ts), and at start the
// versions used within MODELQ_WARM_RECENT, most recent first, as many as the engine's cache holds;
// so a first request finds its session ready instead of waiting for the load. Warm-ups run one at
// a time, in the background: the worker takes jobs meanwhile, and a request for a model that is
// still loading shares that load (workers/inference/infer.ts tells the producer it is loading).
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { createRedis, workerRedisOptions } from '../core/redis.ts';
import { type Registry, versionEventSchema, versionEventsChannel } from '../core/registry.ts';
import type { ArtifactStore } from '../core/storage/index.ts';
import type { Engine } from './engine/engine.ts';
import { localModelPath } from './model-cache.ts';

export interface WarmerDeps {
  engine: Engine;
  store: ArtifactStore;
  registry: Registry;
  cfg: Config;
  logger: Logger;
  prefix: string;
  cacheDir: string;
}

interface Target {
  name: string;
  version: number;
  sha256: string;
  bytes: number;
}

/** How often one worker records that a version served requests (the recency list is coarse on purpose). */
const MARK_EVERY_MS = 60_000;

export class Warmer {
  private subscriber?: Redis;
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly marked = new Map<string, number>();
  /** Resolves when the warm-ups asked for at start are done (tests and logs). */
  startup: Promise<void> = Promise.resolve();

  constructor(private readonly d: WarmerDeps) {}

  /** Subscribes to new versions and queues the recently used ones. */
  async start(): Promise<void> {
    const sub = createRedis(this.d.cfg, workerRedisOptions());
    this.subscriber = sub;
    sub.on('error', (e) => this.d.logger.warn({ err: e.message }, 'redis connection error (model events)'));
    sub.on('message', (_channel: string, message: string) => this.onVersion(message));
    await sub.subscribe(versionEventsChannel(this.d.prefix));
    this.startup = this.warmRecent().catch((e: Error) => this.d.logger.warn({ err: e.message }, 'could not read the recently used models'));
  }

  /** An online job ran on this version: recorded in Redis at most once a minute per version by this worker. */
  used(m: { name: string; version: number }): void {
    const label = `${m.name}@${m.version}`;
    const now = Date.now();
    if (now - (this.marked.get(label) ?? 0) < MARK_EVERY_MS) return;
    this.marked.set(label, now);
    if (this.marked.size > 10_000) this.marked.clear();
    this.d.registry.markUsed(m.name, m.version).catch((e: Error) => this.d.logger.debug({ err: e.message }, 'model use not recorded'));
  }

  private onVersion(message: string) {
    let event;
    try {
      event = versionEventSchema.parse(JSON.parse(message));
    } catch {
      return this.d.logger.warn({ message: message.slice(0, 200) }, 'ignoring a malformed model event');
    }
    void this.warm(event, 'registered');
  }

  private async warmRecent() {
    const window = this.d.cfg.MODELQ_WARM_RECENT;
    if (window <= 0) return;
    const used = await this.d.registry.recentlyUsed(Date.now() - window, 200);
    const budget = this.d.cfg.MODELQ_ENGINE_CACHE_MB * 1024 * 1024;
    let total = 0;
    const seen = new Set<string>();
    const picked: Target[] = [];
    for (const u of used) {
      const v = await this.d.registry.getVersion(u.name, u.version).catch(() => null);
      if (!v || seen.has(v.sha256)) continue;
      if (total + v.bytes > budget) break; // the cache holds no more: the rest would evict these
      seen.add(v.sha256);
      total += v.bytes;
      picked.push({ name: v.name, version: v.version, sha256: v.sha256, bytes: v.bytes });
    }
    // Least recent first, so the most recent ones are the last evicted should the cache fill up.
    await Promise.all(picked.reverse().map((t) => this.warm(t, 'recently used')));
  }

  /** Queues one warm-up; resolves when it is done or failed (a failure is logged, never thrown). A pipeline warms its steps' models. */
  async warm(t: Target, why: string): Promise<void> {
    if (t.bytes === 0) {
      // A pipeline (no file of its own): its steps' models, together.
      const v = await this.d.registry.getVersion(t.name, t.version).catch(() => null);
      if (v?.pipeline) {
        await Promise.all(
          v.pipeline.steps.map((s) =>
            this.warmOne({ name: s.model, version: s.version, sha256: s.sha256, bytes: 1 }, `${why}, step of ${t.name}@${t.version}`),
          ),
        );
        return;
      }
    }
    return this.warmOne(t, why);
  }

  private warmOne(t: Target, why: string): Promise<void> {
    const run = async () => {
      if (this.stopped) return;
      const label = `${t.name}@${t.version}`;
      if (t.bytes > this.d.cfg.MODELQ_ENGINE_CACHE_MB * 1024 * 1024) {
        return this.d.logger.info({ model: label, bytes: t.bytes }, 'model not loaded ahead: larger than MODELQ_ENGINE_CACHE_MB');
      }
      if (this.d.engine.isWarm(t.sha256)) return;
      const t0 = performance.now();
      try {
        const path = await localModelPath(this.d.store, t.sha256, this.d.cacheDir);
        await this.d.engine.warm({ sha256: t.sha256, path, label });
        this.d.logger.info({ model: label, why, ms: Math.round(performance.now() - t0) }, 'model loaded ahead of requests');
      } catch (e) {
        if (!this.stopped) this.d.logger.warn({ model: label, why, err: (e as Error).message }, 'model could not be loaded ahead');
      }
    };
    const p = this.chain.then(run);
    this.chain = p;
    return p;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.subscriber?.disconnect();
  }
}

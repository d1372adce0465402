// What a worker holds of an erased model version: engine sessions, the cached download and the
// verified-digest mark (workers/model-cache.ts), and in-memory drift profiles. Erasures announce on
// Redis Pub/Sub (core/erasure.ts) and every worker drops them.
import type { Redis } from 'ioredis';
import type { Config } from '../../core/config.ts';
import { forgetProfile } from '../../core/drift/index.ts';
import { erasureEventSchema, erasureEventsChannel } from '../../core/erasure.ts';
import type { Logger } from '../../core/logger.ts';
import { createRedis, workerRedisOptions } from '../../core/redis.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { Engine } from '../engine/engine.ts';
import { forgetModel } from '../model-cache.ts';

export interface ErasureListenerDeps {
  engine: Pick<Engine, 'unload' | 'forgetFigures'>;
  store: ArtifactStore;
  cfg: Config;
  logger: Logger;
  prefix: string;
  cacheDir: string;
}

export class ErasureListener {
  private subscriber?: Redis;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly d: ErasureListenerDeps) {}

  async start(): Promise<void> {
    const sub = createRedis(this.d.cfg, workerRedisOptions());
    this.subscriber = sub;
    sub.on('error', (e) => this.d.logger.warn({ err: e.message }, 'redis connection error (erasure events)'));
    sub.on('message', (_channel: string, message: string) => {
      this.chain = this.chain.then(() => this.onErasure(message));
    });
    await sub.subscribe(erasureEventsChannel(this.d.prefix));
  }

  /** Resolves once every erasure received so far has been acted on. */
  settled(): Promise<void> {
    return this.chain;
  }

  private async onErasure(message: string): Promise<void> {
    let parsed;
    try {
      parsed = erasureEventSchema.parse(JSON.parse(message));
    } catch {
      return this.d.logger.warn('an erasure event that is not one; ignored');
    }
    for (const key of parsed.keys) forgetProfile(this.d.store, key);
    this.d.engine.forgetFigures(parsed.labels);
    for (const sha256 of parsed.sha256) {
      try {
        await this.d.engine.unload(sha256, parsed.labels);
        const removed = await forgetModel(sha256, this.d.cacheDir);
        this.d.logger.info({ sha256, cachedFileRemoved: removed }, 'erased model dropped');
      } catch (e) {
        this.d.logger.warn({ sha256, err: (e as Error).message }, 'an erased model could not be dropped');
      }
    }
  }

  async stop(): Promise<void> {
    this.subscriber?.disconnect();
  }
}

// What the producer's routes need, built once per process (tests build their own with a fresh prefix).
import type { Redis } from 'ioredis';
import { type Config, keyPrefix } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { Queues } from '../core/queues.ts';
import { createRedis, producerRedisOptions, waitReady } from '../core/redis.ts';
import { Registry } from '../core/registry.ts';
import { parseTrustedKeys, platformSigner } from '../core/signing.ts';
import { createStore, type ArtifactStore } from '../core/storage/index.ts';
import { ObjectStores } from '../core/storage/object-uris.ts';

export interface ProducerDeps {
  cfg: Config;
  prefix: string;
  redis: Redis;
  queues: Queues;
  registry: Registry;
  store: ArtifactStore;
  /** Stores of the objects batches by reference name (the platform's S3 settings, one client per bucket). */
  objects: ObjectStores;
  logger: Logger;
  /** Where access/audit lines go (MODELQ_AUDIT_LOG); default: `logger`. */
  audit?: Logger;
  /** Run by closeProducerDeps, before Redis closes: connections that parts of the producer opened for themselves, buffers to write out. */
  closers?: (() => void | Promise<void>)[];
}

export async function createProducerDeps(cfg: Config, logger: Logger): Promise<ProducerDeps> {
  const prefix = keyPrefix(cfg);
  parseTrustedKeys(cfg.MODELQ_TRUSTED_KEYS); // a bad entry stops the start with a message naming it
  const redis = createRedis(cfg, producerRedisOptions());
  redis.on('error', (e) => logger.warn({ err: e.message }, 'redis connection error'));
  await waitReady(redis, 10_000);
  const queues = new Queues(prefix, redis);
  // QueueEvents must be listening before the first job is added, or its answer could be missed.
  await Promise.all((['model', 'infer', 'infer-gpu'] as const).map((q) => queues.queueEvents(q).waitUntilReady()));
  const store = createStore(cfg);
  return {
    cfg,
    prefix,
    redis,
    queues,
    registry: new Registry(redis, prefix, { servingCacheMs: 1000, signer: platformSigner(cfg.MODELQ_SIGNING_KEY_FILE, (m) => logger.warn(m)) }),
    store,
    objects: new ObjectStores(store, cfg),
    logger,
    closers: [],
  };
}

export async function closeProducerDeps(d: ProducerDeps): Promise<void> {
  await Promise.all((d.closers?.splice(0) ?? []).map(async (close) => close()));
  await d.queues.close();
  d.redis.disconnect();
}

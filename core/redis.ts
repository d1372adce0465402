// Connection options. The producer fails fast (a request must not hang while Redis is down);
// workers retry forever (BullMQ requires maxRetriesPerRequest: null for blocking commands).
// With MODELQ_REDIS_CLUSTER every process talks to a Redis Cluster instead: every key shares the
// {prefix} hash tag, so all of the platform lives in one slot and multi-key commands still work.
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { Config } from './config.ts';

export function producerRedisOptions(): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  };
}

export function workerRedisOptions(): RedisOptions {
  return {
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 200, 5000),
  };
}

/** Where Redis is: a URL, or the config (MODELQ_REDIS_URL, and MODELQ_REDIS_CLUSTER when set). */
export type RedisTarget = string | (Pick<Config, 'MODELQ_REDIS_URL'> & Partial<Pick<Config, 'MODELQ_REDIS_CLUSTER'>>);

/**
 * A client for `target`. A cluster client is returned typed as Redis: both have the same command
 * methods, status and events, which is all the platform and BullMQ use, so the rest of the code
 * keeps one type.
 */
export function createRedis(target: RedisTarget, opts: RedisOptions): Redis {
  const url = typeof target === 'string' ? target : target.MODELQ_REDIS_URL;
  const seeds = typeof target === 'string' ? undefined : target.MODELQ_REDIS_CLUSTER;
  if (!seeds) return new Redis(url, opts);
  return createCluster(parseSeeds(seeds), url, opts) as unknown as Redis;
}

/** "h1:7000, h2:7001" -> [{ host, port }]. */
export function parseSeeds(seeds: string): { host: string; port: number }[] {
  return seeds
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const i = s.lastIndexOf(':');
      return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
    });
}

function createCluster(nodes: { host: string; port: number }[], url: string, opts: RedisOptions): Cluster {
  // Credentials, database-independent TLS and the like come from MODELQ_REDIS_URL (host and port are the seeds').
  const u = new URL(url);
  const tls = u.protocol === 'rediss:';
  const { retryStrategy, enableOfflineQueue, host: _h, port: _p, ...perNode } = opts;
  const clusterOptions: ClusterOptions = {
    redisOptions: {
      ...perNode,
      ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
      ...(tls ? { tls: {} } : {}),
    },
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    // The node-level retry strategy becomes the cluster's: reconnect after losing every node.
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
    // Managed clusters (ElastiCache, Memorystore) announce IPs whose TLS certificates name the
    // configuration endpoint: keep the name when connecting over TLS.
    ...(tls ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) } : {}),
  };
  const cluster = new Cluster(nodes, clusterOptions);
  clusterSettings.set(cluster, { nodes, url, opts });
  return cluster;
}

/** How each cluster client made here was made, so duplicateRedis can make another the same way. */
const clusterSettings = new WeakMap<object, { nodes: { host: string; port: number }[]; url: string; opts: RedisOptions }>();

/**
 * A new connection like `client`, with `overrides` (RedisOptions). For a plain client that is
 * Redis.duplicate(overrides); a cluster client is rebuilt from its seeds with the overrides
 * applied, because Cluster.duplicate(nodes, options) takes cluster options, not RedisOptions
 * (core/queues.ts duplicates with { maxRetriesPerRequest: null, ... } for QueueEvents).
 */
export function duplicateRedis(client: Redis, overrides: RedisOptions): Redis {
  const cluster = clusterSettings.get(client);
  if (!cluster) return client.duplicate(overrides);
  return createCluster(cluster.nodes, cluster.url, { ...cluster.opts, ...overrides }) as unknown as Redis;
}

/** Resolves when the client is ready, rejects after timeoutMs. */
export async function waitReady(client: Redis, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(t);
      client.off('ready', onReady);
    };
    client.on('ready', onReady);
  });
}

/** Unlinks every key that starts with `prefix`, a SCAN page at a time (never FLUSHALL: a Redis may be shared). */
export async function deleteKeysWithPrefix(client: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await client.unlink(...keys);
  } while (cursor !== '0');
}

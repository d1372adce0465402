// Connection options. The producer fails fast (a request must not hang while Redis is down);
// workers retry forever (BullMQ requires maxRetriesPerRequest: null for blocking commands).
import { Redis, type RedisOptions } from 'ioredis';

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

export function createRedis(url: string, opts: RedisOptions): Redis {
  return new Redis(url, opts);
}

/** Resolves when the client is ready, rejects after timeoutMs. */
export async function waitReady(client: Redis, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => { cleanup(); reject(new Error(`Redis not ready after ${timeoutMs} ms`)); }, timeoutMs);
    const onReady = () => { cleanup(); resolve(); };
    const cleanup = () => { clearTimeout(t); client.off('ready', onReady); };
    client.on('ready', onReady);
  });
}

// Queue names, the shared key prefix, default job options, and one Queue/QueueEvents per queue per
// process (BullMQ holds a connection per instance, so never create them per request).
import { Queue, QueueEvents, FlowProducer, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { ALL_QUEUES, type QueueName } from './config.ts';
import { duplicateRedis } from './redis.ts';

export { ALL_QUEUES, type QueueName };

const DAY = 24 * 3600;

/** Retries with exponential backoff for transient trouble; finished jobs are kept by count and age. */
export const defaultJobOptions: Record<QueueName, JobsOptions> = {
  // A model check is quick and its caller waits: one retry, short retention.
  model: { attempts: 2, backoff: { type: 'exponential', delay: 500 }, removeOnComplete: { age: 3600, count: 1000 }, removeOnFail: { age: DAY, count: 1000 } },
  // Online requests: the caller waits at most MODELQ_INFER_TIMEOUT_MS, so retrying longer is useless.
  // A finished one holds its inputs and outputs: its answer travels by event, so keep it only seconds
  // (long enough for a producer that reconnected to read it), and few of them.
  infer: { attempts: 2, backoff: { type: 'fixed', delay: 100 }, removeOnComplete: { age: 10, count: 1000 }, removeOnFail: { age: 300, count: 1000 } },
  batch: {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 7 * DAY, count: 10_000 },
    removeOnFail: { age: 7 * DAY, count: 10_000 },
  },
  score: {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 7 * DAY, count: 100_000 },
    removeOnFail: { age: 7 * DAY, count: 100_000 },
  },
  train: {
    attempts: 3,
    backoff: { type: 'exponential', delay: 5000 },
    removeOnComplete: { age: 30 * DAY, count: 1000 },
    removeOnFail: { age: 30 * DAY, count: 1000 },
  },
  'infer-gpu': { attempts: 2, backoff: { type: 'fixed', delay: 100 }, removeOnComplete: { age: 10, count: 1000 }, removeOnFail: { age: 300, count: 1000 } },
  'score-gpu': {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1000 },
    removeOnComplete: { age: 7 * DAY, count: 100_000 },
    removeOnFail: { age: 7 * DAY, count: 100_000 },
  },
  compress: {
    attempts: 3,
    backoff: { type: 'exponential', delay: 5000 },
    removeOnComplete: { age: 30 * DAY, count: 1000 },
    removeOnFail: { age: 30 * DAY, count: 1000 },
  },
};

/**
 * Options of one chunk job of a batch flow. A chunk that fails for good, in its processor or
 * outside it (stalled too often, lock lost), must not fail the parent unseen: with
 * ignoreDependencyOnFailure the parent still runs once every chunk has ended, so the finalizer
 * always moves the batch to a final state and records why (from the ignored failures).
 */
export function batchChunkJobOptions(queue: 'score' | 'score-gpu', jobId: string): JobsOptions {
  return { ...defaultJobOptions[queue], jobId, ignoreDependencyOnFailure: true };
}

export class Queues {
  private readonly queues = new Map<QueueName, Queue>();
  private readonly events = new Map<QueueName, QueueEvents>();
  private flow?: FlowProducer;
  private readonly ownConnections: Redis[] = [];

  /** `prefix` is the hash-tagged key prefix ({modelq}); `connection` is shared by every Queue. */
  constructor(
    readonly prefix: string,
    private readonly connection: Redis,
    private readonly eventsConnection?: () => Redis,
  ) {
    // Every Queue sharing the connection adds listeners to it; a dozen is expected, not a leak.
    connection.setMaxListeners(64);
  }

  queue(name: QueueName): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.prefix, defaultJobOptions: defaultJobOptions[name] });
      q.on('error', () => {}); // surfaced through health checks; avoid unhandled 'error' events
      this.queues.set(name, q);
    }
    return q;
  }

  /** QueueEvents needs its own blocking connection. */
  queueEvents(name: QueueName): QueueEvents {
    let e = this.events.get(name);
    if (!e) {
      const connection = this.eventsConnection
        ? this.eventsConnection()
        : duplicateRedis(this.connection, { maxRetriesPerRequest: null, enableOfflineQueue: true });
      // QueueEvents reports its errors itself and does not close a connection it was given: without
      // these, every reconnect attempt while Redis is down is an "Unhandled error event", and the
      // connection would outlive close().
      connection.on('error', () => {});
      this.ownConnections.push(connection);
      e = new QueueEvents(name, { connection, prefix: this.prefix });
      e.on('error', () => {});
      this.events.set(name, e);
    }
    return e;
  }

  flowProducer(): FlowProducer {
    this.flow ??= new FlowProducer({ connection: this.connection, prefix: this.prefix });
    return this.flow;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...[...this.queues.values()].map((q) => q.close()), ...[...this.events.values()].map((e) => e.close()), this.flow?.close()]);
    for (const c of this.ownConnections.splice(0)) c.disconnect();
  }
}

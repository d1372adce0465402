// Which queues the running workers consume, from the figures each live worker publishes (its queues
// and device). A queue no running worker consumes because none of that kind was started (the GPU
// queues on a CPU-only platform, a queue left out of every worker's MODELQ_QUEUES) is shown as
// "not started", not as a fault; only a queue a running worker should take, or one while no
// worker runs at all, is a queue without workers.
import type { Redis } from 'ioredis';
import { GPU_TWINS, isGpuQueue, type QueueName } from '../core/config.ts';
import { readWorkerStats, type WorkerStats } from '../core/stats.ts';

export interface QueueConsumers {
  /** Live workers that consume the queue. */
  consumers: number;
  /** Why nothing consumes it, when that is because no worker of its kind was started. */
  notStarted?: string;
}

const CPU_TWIN: Partial<Record<QueueName, QueueName>> = Object.fromEntries(Object.entries(GPU_TWINS).map(([cpu, gpu]) => [gpu, cpu]));

export function queueConsumers(workers: Pick<WorkerStats, 'queues'>[], queues: readonly QueueName[]): Record<string, QueueConsumers> {
  const out: Record<string, QueueConsumers> = {};
  for (const q of queues) {
    const consumers = workers.filter((w) => w.queues.includes(q)).length;
    const entry: QueueConsumers = { consumers };
    if (consumers === 0 && isGpuQueue(q)) {
      entry.notStarted = `no GPU workers started: only workers with MODELQ_DEVICE=cuda take this queue (work sent with device "gpu"; other work runs on ${CPU_TWIN[q] ?? 'the CPU queues'})`;
    } else if (consumers === 0 && workers.length > 0) {
      entry.notStarted = 'not started: no running worker has this queue in its MODELQ_QUEUES';
    }
    out[q] = entry;
  }
  return out;
}

/** The same, read from Redis at most every `maxAgeMs` (the board asks once per queue per poll). */
export class ConsumerWatch {
  private last: { at: number; value: Promise<Record<string, QueueConsumers>> } | undefined;
  private latest: Record<string, QueueConsumers> = {};

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly queues: readonly QueueName[],
    private readonly maxAgeMs = 1000,
  ) {}

  async read(): Promise<Record<string, QueueConsumers>> {
    const now = Date.now();
    if (!this.last || now - this.last.at > this.maxAgeMs) {
      const value = readWorkerStats(this.redis, this.prefix).then((w) => (this.latest = queueConsumers(w, this.queues)));
      value.catch(() => {});
      this.last = { at: now, value };
    }
    return this.last.value;
  }

  /** The last state read, for callers that cannot wait. */
  get current(): Record<string, QueueConsumers> {
    return this.latest;
  }
}

// A worker process's parts, startable in-process for tests: BullMQ workers for the configured
// queues, the engine, the figures published to Redis, and a graceful stop.
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue, Worker, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Config, GPU_TWINS, isGpuQueue, keyPrefix, type QueueName } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { createRedis, workerRedisOptions } from '../core/redis.ts';
import { publishWorkerStats, removeWorkerStats, type WorkerStats } from '../core/stats.ts';
import { createStore, type ArtifactStore } from '../core/storage/index.ts';
import { Engine } from './engine/engine.ts';
import { BatchStore } from '../core/batches.ts';
import { batchProcessor } from './inference/finalize.ts';
import { inferProcessor } from './inference/infer.ts';
import { scoreProcessor } from './inference/score.ts';
import { compressProcessor } from './compression/compress.ts';
import { Registry } from '../core/registry.ts';
import { inspectProcessor } from './inference/inspect.ts';
import { trainProcessor } from './training/processor.ts';
import { isOpenaiJob, OPENAI_JOBS, OpenaiStore } from '../core/openai-batch.ts';
import { openaiProcessor } from './inference/openai-jobs.ts';

export interface WorkerDeps { engine: Engine; store: ArtifactStore; redis: Redis; cfg: Config; logger: Logger; batches: BatchStore; cacheDir: string }

type ProcessorFactory = (deps: WorkerDeps) => { processor: Processor; concurrency: number };

/** OpenAI batches ride the batch and score queues under their own job names (openai-*). */
const openai = (d: WorkerDeps, job: Job) => openaiProcessor(job, { ...d, openai: new OpenaiStore(d.redis, keyPrefix(d.cfg)), registry: new Registry(d.redis, keyPrefix(d.cfg)), prefix: keyPrefix(d.cfg), ttlMs: d.cfg.MODELQ_BATCH_TTL });

/** The queues this build can process; the others are left to workers that know them. */
const PROCESSORS: Partial<Record<QueueName, ProcessorFactory>> = {
  model: (d) => ({ processor: (job) => inspectProcessor(job, d), concurrency: 4 }),
  infer: (d) => ({ processor: (job, _token, signal) => inferProcessor(job, d, signal), concurrency: d.cfg.MODELQ_INFER_CONCURRENCY }),
  score: (d) => ({ processor: (job, _token, signal) => (isOpenaiJob(job.name) ? openai(d, job) : scoreProcessor(job, d, signal)), concurrency: d.cfg.MODELQ_SCORE_CONCURRENCY }),
  'infer-gpu': (d) => ({ processor: (job, _token, signal) => inferProcessor(job, d, signal), concurrency: d.cfg.MODELQ_INFER_CONCURRENCY }),
  'score-gpu': (d) => ({ processor: (job, _token, signal) => scoreProcessor(job, d, signal), concurrency: d.cfg.MODELQ_SCORE_CONCURRENCY }),
  batch: (d) => ({ processor: (job) => (isOpenaiJob(job.name) ? openai(d, job) : batchProcessor(job, { ...d, ttlMs: d.cfg.MODELQ_BATCH_TTL })), concurrency: 4 }),
  compress: (d) => ({ processor: (job) => compressProcessor(job, { ...d, registry: new Registry(d.redis, keyPrefix(d.cfg)) }), concurrency: 1 }),
  train: (d) => ({ processor: (job, _token, signal) => trainProcessor(job, d, signal), concurrency: 1 }),
};

export interface RunningWorker {
  id: string;
  engine: Engine;
  workers: Worker[];
  stats(): WorkerStats;
  /** Takes no new jobs, lets active ones finish (up to the grace period), then closes everything. */
  stop(): Promise<void>;
}

export async function startWorker(cfg: Config, logger: Logger): Promise<RunningWorker> {
  const prefix = keyPrefix(cfg);
  const redis = createRedis(cfg, workerRedisOptions());
  redis.on('error', (e) => logger.warn({ err: e.message }, 'redis connection error'));
  const store = createStore(cfg);
  const engine = new Engine({
    threads: cfg.MODELQ_ENGINE_THREADS,
    device: cfg.MODELQ_DEVICE,
    intraOpThreads: cfg.MODELQ_ENGINE_INTRA_OP_THREADS,
    cacheBytes: cfg.MODELQ_ENGINE_CACHE_MB * 1024 * 1024,
    logger,
  });
  await engine.start();
  const deps: WorkerDeps = { engine, store, redis, cfg, logger, batches: new BatchStore(redis, prefix), cacheDir: cfg.MODELQ_CACHE_DIR };
  const id = `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const jobs: WorkerStats['jobs'] = {};
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const startedAt = new Date().toISOString();

  const workers: Worker[] = [];
  // GPU twins: a cuda worker adds them; a CPU worker never consumes them, even when listed.
  const queueNames = cfg.MODELQ_DEVICE === 'cuda'
    ? [...new Set([...cfg.MODELQ_QUEUES, ...cfg.MODELQ_QUEUES.flatMap((q) => GPU_TWINS[q] ?? [])])]
    : cfg.MODELQ_QUEUES.filter((q) => {
      if (isGpuQueue(q)) logger.warn({ queue: q }, 'a CPU worker does not consume GPU queues; ignoring it');
      return !isGpuQueue(q);
    });
  for (const name of queueNames) {
    const factory = PROCESSORS[name];
    if (!factory) {
      logger.info({ queue: name }, 'no processor for this queue in this build; not consuming it');
      continue;
    }
    const { processor, concurrency } = factory(deps);
    const counts = (jobs[name] = { completed: 0, failed: 0 });
    const w = new Worker(name, async (job: Job, token?: string, signal?: AbortSignal) => {
      const log = logger.child({ queue: name, jobId: job.id });
      log.debug('job started');
      return processor(job, token, signal);
    }, { connection: redis, prefix, concurrency, autorun: true, lockDuration: cfg.MODELQ_JOB_LOCK_MS, stalledInterval: cfg.MODELQ_JOB_LOCK_MS, maxStalledCount: 5 });
    w.on('completed', (job) => { counts.completed++; logger.debug({ queue: name, jobId: job.id }, 'job completed'); });
    w.on('failed', (job, err) => { counts.failed++; logger.info({ queue: name, jobId: job?.id, err: err.message, attempts: job?.attemptsMade }, 'job failed'); });
    w.on('error', (e) => logger.warn({ queue: name, err: e.message }, 'worker error'));
    workers.push(w);
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  if (cfg.MODELQ_QUEUES.includes('batch')) {
    // Expired batches are removed by the platform itself; every batch worker upserts the same schedule.
    const q = new Queue('batch', { connection: redis, prefix });
    await q.upsertJobScheduler('batch-cleanup', { every: Math.min(3_600_000, Math.max(60_000, cfg.MODELQ_BATCH_TTL / 10)) }, { name: 'cleanup', data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } });
    await q.upsertJobScheduler('openai-cleanup', { every: Math.min(3_600_000, Math.max(60_000, cfg.MODELQ_BATCH_TTL / 10)) }, { name: OPENAI_JOBS.cleanup, data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } });
    await q.close();
  }

  const stats = (): WorkerStats => ({
    id, host: os.hostname(), pid: process.pid, device: engine.device, queues: Object.keys(jobs), startedAt, jobs,
    engine: { ...engine.stats, batchSizes: engine.batcher.stats.batchSizes, perModel: engine.batcher.stats.perModel },
    eventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6, since: windowStart, recent: recentWindows },
    publishedAt: Date.now(),
    rssBytes: process.memoryUsage.rss(),
  });
  const ttl = cfg.MODELQ_STATS_INTERVAL_MS * 3;
  // Event-loop figures cover the time since the previous publication, so a slow moment shows;
  // the last windows' maxima travel along, so a reader that polls slowly misses none.
  let windowStart = Date.now();
  const recentWindows: [number, number, number][] = [];
  const publish = () => {
    const now = Date.now();
    recentWindows.push([windowStart, now, loop.max / 1e6]);
    if (recentWindows.length > 100) recentWindows.shift();
    const s = stats();
    loop.reset();
    windowStart = now;
    return publishWorkerStats(redis, prefix, s, ttl).catch((e) => logger.debug({ err: e.message }, 'stats not published'));
  };
  await publish();
  const timer = setInterval(publish, cfg.MODELQ_STATS_INTERVAL_MS);
  timer.unref();
  logger.info({ id, queues: Object.keys(jobs), threads: cfg.MODELQ_ENGINE_THREADS, device: cfg.MODELQ_DEVICE }, 'worker started');

  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    logger.info('stopping: no new jobs, finishing active ones');
    clearInterval(timer);
    const graceful = Promise.all(workers.map((w) => w.close()));
    const grace = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), cfg.MODELQ_SHUTDOWN_GRACE_MS).unref());
    if ((await Promise.race([graceful, grace])) === 'timeout') {
      logger.warn({ graceMs: cfg.MODELQ_SHUTDOWN_GRACE_MS }, 'active jobs outlived the grace period; closing anyway (they will be retried)');
      await Promise.all(workers.map((w) => w.close(true)));
    }
    await engine.close();
    loop.disable();
    await removeWorkerStats(redis, prefix, id).catch(() => {});
    redis.disconnect();
    logger.info('stopped');
  })());

  return { id, engine, workers, stats, stop };
}

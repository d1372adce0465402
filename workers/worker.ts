// A worker process's parts, startable in-process for tests: BullMQ workers for the configured
// queues, the engine, the figures published to Redis, and a graceful stop.
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Queue, Worker, type Job, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { type Config, GPU_TWINS, isGpuQueue, keyPrefix, maskUrl, type QueueName } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { createRedis, workerRedisOptions } from '../core/redis.ts';
import { publishWorkerStats, removeWorkerStats, type WorkerStats } from '../core/stats.ts';
import { createStore, type ArtifactStore } from '../core/storage/index.ts';
import { ObjectStores } from '../core/storage/object-uris.ts';
import { Engine } from './engine/engine.ts';
import { BatchStore } from '../core/batches.ts';
import { batchProcessor } from './inference/finalize.ts';
import { inferProcessor } from './inference/infer.ts';
import { OnlineStreamConsumer, SHADOW_ENTRIES } from './inference/online-stream.ts';
import { scoreProcessor } from './inference/score.ts';
import { BatchDrift } from './inference/batch-drift.ts';
import { compressProcessor } from './compression/compress.ts';
import { Registry } from '../core/registry.ts';
import { platformSigner } from '../core/signing.ts';
import { verifyModelsWith } from './model-cache.ts';
import { modelProcessor } from './model/processor.ts';
import { trainProcessor } from './training/processor.ts';
import { explainProcessor } from './explain/processor.ts';
import { BusyMonitor } from './busy-monitor.ts';
import { isOpenaiJob, OPENAI_JOBS, OpenaiStore } from '../core/openai-batch.ts';
import { openaiProcessor } from './inference/openai-jobs.ts';
import type { JobStateOf } from './inference/openai-reaper.ts';
import { Warmer } from './warm.ts';
import { ROLLOUT_JOB } from '../core/rollouts.ts';
import { rolloutTick } from './rollout/tick.ts';
import { ErasureListener } from './retention/erasure-events.ts';
import { RETENTION_JOB, retentionRunner, scheduleRetention } from './retention/tick.ts';

export interface WorkerDeps {
  engine: Engine;
  store: ArtifactStore;
  redis: Redis;
  cfg: Config;
  logger: Logger;
  batches: BatchStore;
  cacheDir: string;
  /** The stores of batches by reference (inputs and output prefixes named by URI). */
  objects: ObjectStores;
  /** Present on workers that serve online requests: loads models ahead of their requests (warm.ts). */
  warmer?: Warmer;
}

type ProcessorFactory = (deps: WorkerDeps) => { processor: Processor; concurrency: number };

/** The infer queues carry plain requests (`infer`, dynamically batched) and explained ones (`explain`). */
const onlineProcessor = (job: Job, d: WorkerDeps & { drift?: BatchDrift }, signal?: AbortSignal) =>
  job.name === 'explain' ? explainProcessor(job, d) : inferProcessor(job, d, signal);
/** OpenAI batches ride the batch queue under their own job names (openai-*); their rows are scored by native batches. */
const openai = (d: WorkerDeps, job: Job, jobState?: JobStateOf) =>
  openaiProcessor(job, {
    ...(jobState ? { jobState } : {}),
    ...d,
    openai: new OpenaiStore(d.redis, keyPrefix(d.cfg)),
    registry: new Registry(d.redis, keyPrefix(d.cfg)),
    prefix: keyPrefix(d.cfg),
    ttlMs: d.cfg.MODELQ_BATCH_TTL,
    maxLineBytes: d.cfg.MODELQ_OPENAI_MAX_LINE_BYTES,
  });

/** The queues this build can process; the others are left to workers that know them. */
const PROCESSORS: Partial<Record<QueueName, ProcessorFactory>> = {
  model: (d) => {
    const prefix = keyPrefix(d.cfg);
    const rollout = { ...d, prefix, registry: new Registry(d.redis, prefix), queue: new Queue('model', { connection: d.redis, prefix }) };
    const retention = retentionRunner({ ...d, prefix });
    // Rollout evaluations and retention sweeps ride the model queue under their own job names (workers/rollout/tick.ts, workers/retention/tick.ts).
    return {
      processor: (job) => (job.name === ROLLOUT_JOB ? rolloutTick(job, rollout) : job.name === RETENTION_JOB ? retention() : modelProcessor(job, d)),
      concurrency: 4,
    };
  },
  infer: (d) => {
    // Drift of the online requests of models with declared processing (workers/processing/drift.ts).
    const drift = new BatchDrift(d.redis, keyPrefix(d.cfg), d.store, d.cfg, d.logger);
    return { processor: (job, _token, signal) => onlineProcessor(job, { ...d, drift }, signal), concurrency: d.cfg.MODELQ_INFER_CONCURRENCY };
  },
  score: (d) => {
    const drift = new BatchDrift(d.redis, keyPrefix(d.cfg), d.store, d.cfg, d.logger);
    return {
      processor: (job, _token, signal) => scoreProcessor(job, { ...d, drift }, signal),
      concurrency: d.cfg.MODELQ_SCORE_CONCURRENCY,
    };
  },
  'infer-gpu': (d) => ({ processor: (job, _token, signal) => onlineProcessor(job, d, signal), concurrency: d.cfg.MODELQ_INFER_CONCURRENCY }),
  'score-gpu': (d) => {
    const drift = new BatchDrift(d.redis, keyPrefix(d.cfg), d.store, d.cfg, d.logger);
    return { processor: (job, _token, signal) => scoreProcessor(job, { ...d, drift }, signal), concurrency: d.cfg.MODELQ_SCORE_CONCURRENCY };
  },
  batch: (d) => {
    const flows = new Queue('batch', { connection: d.redis, prefix: keyPrefix(d.cfg) });
    const flowExists = async (id: string) => (await flows.getJobState(id)) !== 'unknown';
    const jobState: JobStateOf = async (id) => {
      const j = await flows.getJob(id);
      return j ? { state: await j.getState(), failedReason: j.failedReason } : { state: 'unknown' };
    };
    return {
      processor: (job) => (isOpenaiJob(job.name) ? openai(d, job, jobState) : batchProcessor(job, { ...d, ttlMs: d.cfg.MODELQ_BATCH_TTL, flowExists })),
      concurrency: 4,
    };
  },
  compress: (d) => ({ processor: (job) => compressProcessor(job, { ...d, registry: signingRegistry(d) }), concurrency: 1 }),
  train: (d) => ({ processor: (job, _token, signal) => trainProcessor(job, d, signal), concurrency: 1 }),
};

export interface RunningWorker {
  id: string;
  engine: Engine;
  workers: Worker[];
  /** The online streams this worker reads (MODELQ_ONLINE_TRANSPORT=streams on producers): per online queue, its stream and its shadow lane. */
  streams: OnlineStreamConsumer[];
  warmer?: Warmer;
  stats(): WorkerStats;
  /** Takes no new jobs, lets active ones finish (up to the grace period), then closes everything. */
  stop(): Promise<void>;
}

/** A registry that signs the versions it creates (training, compression) with the platform's key. */
export const signingRegistry = (d: Pick<WorkerDeps, 'redis' | 'cfg' | 'logger'>) =>
  new Registry(d.redis, keyPrefix(d.cfg), { signer: platformSigner(d.cfg.MODELQ_SIGNING_KEY_FILE, (m) => d.logger.warn(m)) });

export async function startWorker(cfg: Config, logger: Logger): Promise<RunningWorker> {
  const prefix = keyPrefix(cfg);
  const redis = createRedis(cfg, workerRedisOptions());
  redis.on('error', (e) => logger.warn({ err: e.message }, 'redis connection error'));
  const engine = await startEngine(cfg, logger);
  const store = createStore(cfg);
  const objects = new ObjectStores(store, cfg);
  const deps: WorkerDeps = { engine, store, redis, cfg, logger, batches: new BatchStore(redis, prefix), cacheDir: cfg.MODELQ_CACHE_DIR, objects };
  // Every model this process loads is checked against the platform's signature of its digest first.
  const signatures = new Registry(redis, prefix);
  verifyModelsWith((sha256) => signatures.digestSignature(sha256));
  const id = `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  const jobs: WorkerStats['jobs'] = {};
  const workers: Worker[] = [];
  const queues = consumedQueues(cfg, logger);
  // Models are loaded ahead where online requests are served: they would otherwise wait for the load.
  if (queues.includes('infer') || queues.includes('infer-gpu')) {
    deps.warmer = new Warmer({ engine, store: deps.store, registry: new Registry(redis, prefix), cfg, logger, prefix, cacheDir: cfg.MODELQ_CACHE_DIR });
    await deps.warmer.start();
  }
  // Every worker drops what it holds of an erased version (sessions, cached downloads).
  const erasures = new ErasureListener({ engine, store: deps.store, cfg, logger, prefix, cacheDir: cfg.MODELQ_CACHE_DIR });
  await erasures.start();
  for (const name of queues) {
    const factory = PROCESSORS[name];
    if (!factory) {
      logger.info({ queue: name }, 'no processor for this queue in this build; not consuming it');
      continue;
    }
    workers.push(queueWorker(name, factory(deps), (jobs[name] = { completed: 0, failed: 0 }), deps, id));
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  // Online queues are served on both transports: a producer's MODELQ_ONLINE_TRANSPORT picks one.
  // A pause of the queue (dashboard) holds its stream as well: the consumer asks Queue.isPaused().
  const pauseQueues = (['infer', 'infer-gpu'] as const).filter((q) => jobs[q]).map((q) => new Queue(q, { connection: redis, prefix }));
  // Each has a shadow lane too, read by a consumer of its own whose runs are low priority.
  const streams = pauseQueues.flatMap((pq) => {
    const q = pq.name as 'infer' | 'infer-gpu';
    const drift = new BatchDrift(redis, prefix, deps.store, cfg, logger);
    const consumer = (shadow: boolean) =>
      new OnlineStreamConsumer({
        redis,
        prefix,
        queue: q,
        consumer: id,
        concurrency: shadow ? SHADOW_ENTRIES : cfg.MODELQ_INFER_CONCURRENCY,
        lockMs: cfg.MODELQ_JOB_LOCK_MS,
        deps: { ...deps, drift },
        logger,
        counts: jobs[q]!,
        isPaused: () => pq.isPaused(),
        shadow,
      });
    return [consumer(false), consumer(true)];
  });
  await Promise.all(streams.map((s) => s.start()));
  if (cfg.MODELQ_QUEUES.includes('batch')) await scheduleBatchCleanup(redis, prefix, cfg);
  if (jobs.model) await scheduleRetention(redis, prefix, cfg);

  const figures = publishFigures(deps, { id, jobs, engine, startedAt: new Date().toISOString() });
  await figures.publish();
  logger.info(
    { id, queues: Object.keys(jobs), threads: cfg.MODELQ_ENGINE_THREADS, device: cfg.MODELQ_DEVICE, redis: maskUrl(cfg.MODELQ_REDIS_URL) },
    'worker started',
  );

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info('stopping: no new jobs, finishing active ones');
      figures.stop();
      await deps.warmer?.stop();
      await erasures.stop();
      await Promise.all([...streams.map((s) => s.stop(cfg.MODELQ_SHUTDOWN_GRACE_MS)), closeWorkers(workers, cfg.MODELQ_SHUTDOWN_GRACE_MS, logger)]);
      await engine.close();
      await Promise.all(pauseQueues.map((q) => q.close().catch(() => {})));
      await removeWorkerStats(redis, prefix, id).catch(() => {});
      redis.disconnect();
      logger.info('stopped');
    })());

  return { id, engine, workers, streams, stats: figures.stats, stop, ...(deps.warmer ? { warmer: deps.warmer } : {}) };
}

async function startEngine(cfg: Config, logger: Logger): Promise<Engine> {
  const engine = new Engine({
    threads: cfg.MODELQ_ENGINE_THREADS,
    device: cfg.MODELQ_DEVICE,
    intraOpThreads: cfg.MODELQ_ENGINE_INTRA_OP_THREADS,
    cacheBytes: cfg.MODELQ_ENGINE_CACHE_MB * 1024 * 1024,
    fastRows: cfg.MODELQ_FAST_ROWS,
    memoryMb: cfg.MODELQ_ENGINE_THREAD_MEMORY_MB,
    runTimeoutMs: cfg.MODELQ_ENGINE_RUN_TIMEOUT_MS,
    logger,
  });
  await engine.start();
  return engine;
}

/** MODELQ_QUEUES, with their GPU twins on a cuda worker; a CPU worker never consumes GPU queues, even when listed. */
function consumedQueues(cfg: Config, logger: Logger): QueueName[] {
  if (cfg.MODELQ_DEVICE === 'cuda') return [...new Set([...cfg.MODELQ_QUEUES, ...cfg.MODELQ_QUEUES.flatMap((q) => GPU_TWINS[q] ?? [])])];
  return cfg.MODELQ_QUEUES.filter((q) => {
    if (isGpuQueue(q)) logger.warn({ queue: q }, 'a CPU worker does not consume GPU queues; ignoring it');
    return !isGpuQueue(q);
  });
}

/** A BullMQ worker for one queue, counting its finished jobs into `counts`. */
function queueWorker(
  name: QueueName,
  { processor, concurrency }: ReturnType<ProcessorFactory>,
  counts: { completed: number; failed: number },
  d: WorkerDeps,
  id: string,
): Worker {
  const { cfg, logger } = d;
  const w = new Worker(
    name,
    async (job: Job, token?: string, signal?: AbortSignal) => {
      logger.debug({ queue: name, jobId: job.id }, 'job started');
      return processor(job, token, signal);
    },
    {
      connection: d.redis,
      prefix: keyPrefix(cfg),
      // Each job records the worker process that took it (`processedBy`: host:pid:tag), as the
      // worker figures on the dashboard name it.
      name: id,
      concurrency,
      autorun: true,
      lockDuration: cfg.MODELQ_JOB_LOCK_MS,
      stalledInterval: cfg.MODELQ_JOB_LOCK_MS,
      maxStalledCount: 5,
    },
  );
  w.on('completed', (job) => {
    counts.completed++;
    logger.debug({ queue: name, jobId: job.id }, 'job completed');
  });
  w.on('failed', (job, err) => {
    counts.failed++;
    logger.info({ queue: name, jobId: job?.id, err: err.message, attempts: job?.attemptsMade }, 'job failed');
  });
  w.on('error', (e) => logger.warn({ queue: name, err: e.message }, 'worker error'));
  return w;
}

/** Expired batches are removed by the platform itself; every batch worker upserts the same schedule. */
async function scheduleBatchCleanup(redis: Redis, prefix: string, cfg: Config) {
  const q = new Queue('batch', { connection: redis, prefix });
  const every = Math.min(3_600_000, Math.max(60_000, cfg.MODELQ_BATCH_TTL / 10));
  await q.upsertJobScheduler('batch-cleanup', { every }, { name: 'cleanup', data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } });
  await q.upsertJobScheduler('openai-cleanup', { every }, { name: OPENAI_JOBS.cleanup, data: {}, opts: { removeOnComplete: 100, removeOnFail: 100 } });
  await q.close();
}

/**
 * The worker's figures, published into Redis every MODELQ_STATS_INTERVAL_MS. Event-loop figures
 * cover the time since the previous publication, so a slow moment shows; the last windows' maxima
 * travel along, so a reader that polls slowly misses none.
 */
function publishFigures(d: WorkerDeps, who: { id: string; jobs: WorkerStats['jobs']; engine: Engine; startedAt: string }) {
  const { cfg, redis, logger } = d;
  const prefix = keyPrefix(cfg);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const busy = new BusyMonitor();
  let windowStart = Date.now();
  const recent: [number, number, number, number][] = [];
  const { engine } = who;
  const stats = (): WorkerStats => ({
    id: who.id,
    host: os.hostname(),
    pid: process.pid,
    device: engine.device,
    queues: Object.keys(who.jobs),
    startedAt: who.startedAt,
    jobs: who.jobs,
    engine: { ...engine.stats, batchSizes: engine.batcher.stats.batchSizes, perModel: engine.batcher.stats.perModel, low: { ...engine.lowStats } },
    models: engine.models(),
    eventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6, since: windowStart, recent },
    publishedAt: Date.now(),
    rssBytes: process.memoryUsage.rss(),
  });
  const publish = () => {
    const now = Date.now();
    recent.push([windowStart, now, loop.max / 1e6, busy.takeMax()]);
    if (recent.length > 100) recent.shift();
    const s = stats();
    loop.reset();
    windowStart = now;
    return publishWorkerStats(redis, prefix, s, cfg.MODELQ_STATS_INTERVAL_MS * 3).catch((e: Error) => logger.debug({ err: e.message }, 'stats not published'));
  };
  const timer = setInterval(publish, cfg.MODELQ_STATS_INTERVAL_MS);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    busy.stop();
    loop.disable();
  };
  return { stats, publish, stop };
}

/** Lets active jobs finish for up to `graceMs`, then closes the workers anyway (their jobs will be retried). */
async function closeWorkers(workers: Worker[], graceMs: number, logger: Logger) {
  const graceful = Promise.all(workers.map((w) => w.close()));
  const grace = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([graceful, grace])) === 'timeout') {
    logger.warn({ graceMs }, 'active jobs outlived the grace period; closing anyway (they will be retried)');
    await Promise.all(workers.map((w) => w.close(true)));
  }
}

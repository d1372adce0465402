// Prometheus metrics of the whole platform, served by the producer: its own HTTP figures, queue
// depths read from Redis at scrape time, and the figures every live worker publishes into Redis.
import type { RequestHandler } from 'express';
import client from 'prom-client';
import { ALL_QUEUES } from '../core/config.ts';
import { readWorkerStats, type WorkerStats } from '../core/stats.ts';
import { BATCH_BUCKETS } from '../core/jobs/infer.ts';
import type { ProducerDeps } from './deps.ts';
import { driftFigures } from './drift-metrics.ts';
import { inferenceFor } from './inference/service.ts';

export interface Metrics {
  registry: client.Registry;
  middleware: RequestHandler;
  /** What the middleware records for a request answered outside express (the inference fast path); call when it started. */
  startRequest(method: string, route: string): (status: number) => void;
  /** The gRPC server's figures, as HTTP's: call when a call (or a streamed request) starts, then with its status code's name. */
  startGrpc(method: string): (code: string) => void;
}

export function createMetrics(d: ProducerDeps): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'modelq_producer_' });
  queueDepths(registry, d);
  workerFigures(registry, d);
  driftFigures(registry, d);
  payloadLogFigures(registry, d);
  return { registry, ...httpFigures(registry), startGrpc: grpcFigures(registry) };
}

const perDeps = new WeakMap<ProducerDeps, Metrics>();

/** One per producer (per deps): the HTTP app and the gRPC server record into the registry /metrics serves. */
export function metricsFor(d: ProducerDeps): Metrics {
  let m = perDeps.get(d);
  if (!m) perDeps.set(d, (m = createMetrics(d)));
  return m;
}

/** gRPC calls by method and status code, and latency; a ModelStreamInfer request counts as one call. */
function grpcFigures(registry: client.Registry): Metrics['startGrpc'] {
  const calls = new client.Counter({
    name: 'modelq_grpc_requests_total',
    help: 'gRPC requests by method and status code (each request of a stream counts once)',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'modelq_grpc_request_duration_seconds',
    help: 'gRPC request latency',
    labelNames: ['method'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  return (method) => {
    const end = latency.startTimer();
    return (code) => {
      calls.inc({ method, code });
      end({ method });
    };
  };
}

/** The producer's own HTTP figures: requests by route and status, and latency. */
function httpFigures(registry: client.Registry): Pick<Metrics, 'middleware' | 'startRequest'> {
  const requests = new client.Counter({
    name: 'modelq_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'modelq_http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const startRequest = (method: string, route: string) => {
    const end = latency.startTimer();
    return (status: number) => {
      requests.inc({ method, route, status: String(status) });
      end({ method, route });
    };
  };
  const middleware: RequestHandler = (req, res, next) => {
    const end = latency.startTimer();
    res.on('finish', () => {
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : 'unmatched';
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      end({ method: req.method, route });
    });
    next();
  };
  return { middleware, startRequest };
}

/** This producer's payload log records (producer/inference/payload-log.ts): sampled, written, dropped (buffer full), lost (write failed). */
function payloadLogFigures(registry: client.Registry, d: ProducerDeps) {
  const counts = () => inferenceFor(d).payloads.counts;
  for (const [name, key, help] of [
    ['modelq_payload_log_sampled_total', 'sampled', 'Requests sampled for the payload log'],
    ['modelq_payload_log_written_total', 'written', 'Payload log records written to the store'],
    ['modelq_payload_log_dropped_total', 'dropped', 'Sampled requests not logged: the buffer (MODELQ_PAYLOAD_LOG_BUFFER_MB) was full'],
    ['modelq_payload_log_failed_total', 'failed', 'Payload log records lost: their part could not be written'],
    ['modelq_payload_log_parts_total', 'parts', 'Payload log parts written'],
  ] as const) {
    new client.Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(counts()[key]);
      },
    });
  }
}

/** Jobs per queue and state, read from Redis at scrape time. */
function queueDepths(registry: client.Registry, d: ProducerDeps) {
  new client.Gauge({
    name: 'modelq_queue_jobs',
    help: 'Jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const q of ALL_QUEUES) {
        try {
          const counts = await d.queues.queue(q).getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed');
          for (const [state, n] of Object.entries(counts)) this.set({ queue: q, state }, n);
        } catch {
          /* Redis down: the scrape still answers with the producer's own figures */
        }
      }
    },
  });
}

/** The figures every live worker publishes into Redis (core/stats.ts), read once per scrape. */
function workerFigures(registry: client.Registry, d: ProducerDeps) {
  // Worker figures: read once per scrape, shared by the collectors below.
  let snapshot: Promise<WorkerStats[]> | null = null;
  const workers = () =>
    (snapshot ??= readWorkerStats(d.redis, d.prefix)
      .catch(() => [])
      .finally(() =>
        setTimeout(() => {
          snapshot = null;
        }, 0),
      ));
  const fromWorkers = (
    name: string,
    help: string,
    type: 'counter' | 'gauge',
    labelNames: string[],
    fill: (w: WorkerStats, set: (labels: Record<string, string>, v: number) => void) => void,
  ) => {
    const Kind = type === 'counter' ? client.Counter : client.Gauge;
    new Kind({
      name,
      help,
      labelNames: ['worker', ...labelNames],
      registers: [registry],
      async collect() {
        this.reset();
        for (const w of await workers()) {
          fill(w, (labels, v) => {
            if (this instanceof client.Counter) this.inc({ worker: w.id, ...labels }, v);
            else (this as client.Gauge).set({ worker: w.id, ...labels }, v);
          });
        }
      },
    });
  };
  fromWorkers('modelq_worker_up', 'Live worker processes (1 each), with their device', 'gauge', ['device'], (w, set) => set({ device: w.device }, 1));
  fromWorkers('modelq_worker_jobs_total', 'Jobs finished by workers', 'counter', ['queue', 'status'], (w, set) => {
    for (const [queue, c] of Object.entries(w.jobs)) {
      set({ queue, status: 'completed' }, c.completed);
      set({ queue, status: 'failed' }, c.failed);
    }
  });
  fromWorkers('modelq_engine_runs_total', 'onnxruntime runs', 'counter', [], (w, set) => set({}, w.engine.runs));
  fromWorkers('modelq_engine_rows_total', 'Rows computed by onnxruntime runs', 'counter', [], (w, set) => set({}, w.engine.rows));
  fromWorkers('modelq_engine_requests_total', 'Requests served by onnxruntime runs', 'counter', [], (w, set) => set({}, w.engine.requests));
  fromWorkers('modelq_engine_errors_total', 'Failed engine runs', 'counter', [], (w, set) => set({}, w.engine.errors));
  fromWorkers('modelq_engine_compute_seconds_total', 'Time spent inside onnxruntime runs', 'counter', [], (w, set) => set({}, w.engine.computeMs / 1000));
  fromWorkers('modelq_engine_model_loads_total', 'Model sessions created (one per model and engine thread)', 'counter', [], (w, set) =>
    set({}, w.engine.loads ?? 0),
  );
  fromWorkers('modelq_engine_model_load_seconds_total', 'Time spent creating model sessions', 'counter', [], (w, set) =>
    set({}, (w.engine.loadMs ?? 0) / 1000),
  );
  const perModel =
    (metric: 'runs' | 'rows' | 'requests' | 'computeMs' | 'waitMs', scale = 1) =>
    (w: WorkerStats, set: (l: Record<string, string>, v: number) => void) => {
      for (const [model, m] of Object.entries(w.engine.perModel ?? {})) set({ model }, m[metric] * scale);
    };
  fromWorkers('modelq_engine_model_runs_total', 'onnxruntime runs per model (after dynamic batching)', 'counter', ['model'], perModel('runs'));
  fromWorkers('modelq_engine_model_requests_total', 'Requests served per model; rate() gives requests per second', 'counter', ['model'], perModel('requests'));
  fromWorkers('modelq_engine_model_rows_total', 'Rows computed per model', 'counter', ['model'], perModel('rows'));
  fromWorkers('modelq_engine_model_compute_seconds_total', 'Time inside onnxruntime per model', 'counter', ['model'], perModel('computeMs', 1 / 1000));
  fromWorkers(
    'modelq_engine_model_queue_wait_seconds_total',
    'Time requests waited in the batcher before their run, summed, per model',
    'counter',
    ['model'],
    perModel('waitMs', 1 / 1000),
  );
  batchSizeHistogram(registry, workers);
  fromWorkers('modelq_worker_event_loop_delay_p99_seconds', 'Worker main-thread event loop delay, p99', 'gauge', [], (w, set) =>
    set({}, w.eventLoopDelayMs.p99 / 1000),
  );
  fromWorkers(
    'modelq_worker_main_thread_busy_max_seconds',
    'Worker main thread: longest busy stretch in the last stats window (its own blocking, unlike event-loop delay)',
    'gauge',
    [],
    (w, set) => {
      const busy = w.eventLoopDelayMs.recent?.at(-1)?.[3];
      if (busy !== undefined) set({}, busy / 1000);
    },
  );
  fromWorkers('modelq_worker_resident_memory_bytes', 'Worker resident memory', 'gauge', [], (w, set) => set({}, w.rssBytes));
}

/** Batch sizes as a Prometheus histogram assembled from the workers' bucket counts. */
function batchSizeHistogram(registry: client.Registry, workers: () => Promise<WorkerStats[]>) {
  registry.registerMetric({
    name: 'modelq_engine_batch_size',
    help: 'Rows per onnxruntime run (dynamic batching)',
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: { labels: Record<string, string>; value: number; metricName: string }[] = [];
      for (const w of await workers()) {
        const counts = w.engine.batchSizes ?? {};
        let cum = 0;
        for (const le of [...BATCH_BUCKETS.map(String), '+Inf']) {
          cum += counts[le] ?? 0;
          values.push({ labels: { worker: w.id, le }, value: cum, metricName: 'modelq_engine_batch_size_bucket' });
        }
        values.push({ labels: { worker: w.id }, value: w.engine.rows, metricName: 'modelq_engine_batch_size_sum' });
        values.push({ labels: { worker: w.id }, value: cum, metricName: 'modelq_engine_batch_size_count' });
      }
      return { name: 'modelq_engine_batch_size', help: 'Rows per onnxruntime run (dynamic batching)', type: 'histogram', aggregator: 'sum', values } as never;
    },
  } as never);
}

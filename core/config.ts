// Environment -> frozen, typed config. Every key documents its default; a bad value stops the
// process at start with a message naming the key.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** "7d", "12h", "30m", "45s" or plain seconds -> milliseconds. */
const duration = z.string().regex(/^\d+(\.\d+)?[smhd]?$/, 'must be a duration like 7d, 12h, 30m, 45s or seconds').transform((s) => {
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[s.slice(-1)] ?? 1;
  return Math.round(parseFloat(s) * unit * 1000);
});
const flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');

export const ALL_QUEUES = ['model', 'infer', 'batch', 'score', 'train', 'compress', 'infer-gpu', 'score-gpu'] as const;
export type QueueName = (typeof ALL_QUEUES)[number];
/** Work that asks for `device: "gpu"` goes to the GPU twin of its queue, which only cuda workers consume. */
export const GPU_TWINS: Partial<Record<QueueName, QueueName>> = { infer: 'infer-gpu', score: 'score-gpu' };
export const isGpuQueue = (q: QueueName) => q.endsWith('-gpu');

/** Each entry: [schema with default, description]. The README's configuration table is generated from this. */
export const configKeys = {
  MODELQ_REDIS_URL: [z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
    'Redis connection URL.'],
  MODELQ_PREFIX: [z.string().regex(/^[a-zA-Z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, _ or -').default('modelq'),
    'Prefix of every Redis key and queue; the platform wraps it in braces ({modelq}) so all keys share one cluster slot.'],
  MODELQ_DATA_DIR: [z.string().min(1).default('./data'), 'Root of the filesystem artifact store (models, batch files).'],
  MODELQ_REDIS_CLUSTER: [z.string().regex(/^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/, 'must be comma-separated host:port seed nodes').optional(),
    'Comma-separated Redis Cluster seed nodes (host:port,...); when set, every process uses a cluster client (credentials and TLS still come from MODELQ_REDIS_URL).'],
  MODELQ_STORE: [z.enum(['fs', 's3']).default('fs'), 'Artifact store: fs (MODELQ_DATA_DIR, one machine or a shared volume) or s3 (S3, MinIO: no shared disk).'],
  MODELQ_S3_BUCKET: [z.string().min(3).max(63).optional(), 'Bucket of the s3 store (required with MODELQ_STORE=s3). Credentials come the AWS SDK\'s usual way (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, role).'],
  MODELQ_S3_ENDPOINT: [z.string().url().optional(), 'URL of a non-AWS S3 server (MinIO: http://minio:9000); addressing is then path-style. Unset: AWS S3.'],
  MODELQ_S3_REGION: [z.string().min(1).default('us-east-1'), 'Region the s3 store signs for.'],
  MODELQ_CACHE_DIR: [z.string().min(1).default(path.join(os.tmpdir(), 'modelq-cache')), 'Where a worker keeps models downloaded from an object store, by sha256 (unused with the fs store).'],
  MODELQ_PORT: [int(1, 65535).default(8080), 'HTTP port of the producer (API, /v2, /metrics, /openapi.json).'],
  MODELQ_GRPC_PORT: [int(0, 65535).default(8001), 'Port of the inference protocol over gRPC (GRPCInferenceService, served by the producer); 0 turns it off.'],
  MODELQ_GRPC_MAX_MESSAGE_MB: [int(1, 4096).default(64), 'Largest gRPC message the producer receives or sends, in MiB (gRPC\'s own default is 4).'],
  MODELQ_DASHBOARD_PORT: [int(1, 65535).default(8081), 'HTTP port of the bull-board dashboard.'],
  MODELQ_DASHBOARD_ADMIN: [flag.default(false), 'Set to 1 to allow retry/remove actions in the dashboard; read-only otherwise.'],
  MODELQ_QUEUES: [z.string().default(ALL_QUEUES.filter((q) => !q.endsWith('-gpu')).join(',')).transform((s, ctx) => {
    const names = s.split(',').map((x) => x.trim()).filter(Boolean);
    for (const n of names) {
      if (!(ALL_QUEUES as readonly string[]).includes(n)) {
        ctx.addIssue({ code: 'custom', message: `unknown queue "${n}" (known: ${ALL_QUEUES.join(', ')})` });
      }
    }
    return names as QueueName[];
  }), 'Comma-separated queues this worker consumes; default all CPU queues. A worker with MODELQ_DEVICE=cuda also consumes their GPU twins (infer-gpu, score-gpu); a CPU worker never does.'],
  MODELQ_DEVICE: [z.enum(['cpu', 'cuda']).default('cpu'), 'Execution provider for the engine; cuda falls back to CPU with a warning when CUDA cannot load.'],
  MODELQ_ENGINE_THREADS: [int(1, 256).default(Math.max(1, os.availableParallelism())), 'Engine worker threads per worker process (default: one per core).'],
  MODELQ_ENGINE_INTRA_OP_THREADS: [int(1, 256).default(1), 'onnxruntime intra-op threads per session; 1 keeps threads from fighting over cores.'],
  MODELQ_ENGINE_CACHE_MB: [int(1, 1_000_000).default(2048), 'Memory bound on cached onnxruntime sessions per engine thread (estimated by model file size).'],
  MODELQ_WORKERS: [int(0, 64).default(2), 'Worker processes started by `npm start`.'],
  MODELQ_INFER_CONCURRENCY: [int(1, 10_000).default(64), 'Concurrent jobs per worker process on the infer queue (fills dynamic batches).'],
  MODELQ_INFER_TIMEOUT_MS: [int(10, 600_000).default(30_000), 'How long an online request waits for its answer before 504.'],
  MODELQ_REGISTER_TIMEOUT_MS: [int(100, 600_000).default(60_000), 'How long a model upload waits for a worker to check the file before 504.'],
  MODELQ_MAX_REQUEST_MB: [int(1, 4096).default(32), 'Largest accepted JSON request body (protocol requests), in MiB.'],
  MODELQ_MAX_UPLOAD_MB: [int(1, 1_048_576).default(4096), 'Largest accepted upload (models, batch files), in MiB.'],
  MODELQ_JOB_LOCK_MS: [int(1000, 3_600_000).default(30_000), 'Job lock duration: a job whose worker died (SIGKILL, lost node) is picked up again after about this long.'],
  MODELQ_SHUTDOWN_GRACE_MS: [int(0, 3_600_000).default(30_000), 'On SIGTERM, how long active jobs may take to finish before the worker exits anyway.'],
  MODELQ_BATCH_CHUNK_ROWS: [int(1, 100_000).default(5000), 'Rows per chunk job of a batch when the request does not say (chunkRows).'],
  MODELQ_BATCH_MAX_ROWS: [int(1, 1_000_000_000).default(100_000_000), 'Most rows one batch file may have (400 above).'],
  MODELQ_BATCH_TTL: [duration.default(7 * 86400 * 1000), 'How long a batch and its files are kept after submit (7d, 12h, ...); expired ones are removed by the workers.'],
  MODELQ_SCORE_CONCURRENCY: [int(1, 256).default(Math.max(1, os.availableParallelism())), 'Chunks one worker process scores at once (default: one per core).'],
  MODELQ_API_KEYS: [z.string().optional(), 'JSON object { "<key>": { "tenant": "<name>", "scopes": ["read","infer","submit","admin"] } }; when set, every route but /v2/health/* needs a key.'],
  MODELQ_API_KEYS_FILE: [z.string().optional(), 'Path of a file holding MODELQ_API_KEYS (read at start).'],
  MODELQ_AUTH: [z.enum(['optional', 'required']).default('optional'), 'required: refuse to start without API keys; optional: run open (and say so loudly) when none are configured.'],
  MODELQ_RATE_LIMIT: [z.string().regex(/^\d+\/(s|m|h)$/, 'must look like 100/s, 6000/m or 100000/h').optional(), 'Requests per key (per client address when open) and window, e.g. 100/s; off when unset. Above it: 429 with Retry-After.'],
  MODELQ_LOG_LEVEL: [z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), 'pino log level.'],
  MODELQ_STATS_INTERVAL_MS: [int(100, 600_000).default(5000), 'How often workers publish their figures into Redis for /metrics.'],
} as const;

type Keys = typeof configKeys;
export type Config = Readonly<{ [K in keyof Keys]: z.output<Keys[K][0]> }>;

export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, [schema]] of Object.entries(configKeys)) {
    const raw = env[key];
    const r = (schema as z.ZodType).safeParse(raw === '' ? undefined : raw);
    if (r.success) out[key] = r.data;
    else problems.push(`${key}=${JSON.stringify(raw)}: ${r.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length) throw new ConfigError(`invalid configuration: ${problems.join(', ')}`);
  return Object.freeze(out) as Config;
}

/** Loads config or prints the reason and exits 1: for the processes' main files. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`modelq: ${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
}

/** The hash-tagged prefix of every key, e.g. "{modelq}". */
export const keyPrefix = (cfg: Pick<Config, 'MODELQ_PREFIX'>) => `{${cfg.MODELQ_PREFIX}}`;

// Environment -> frozen, typed config. Every key documents its default; a bad value stops the
// process at start with a message naming the key.
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { unknownKeyProblems } from './config-unknown.ts';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** What a value must look like, for the configuration table (docs/operations.md), where the schema cannot say it itself (a pattern, a transform). */
const allowed = (text: string) => ({ allowed: text });
/** "7d", "12h", "30m", "45s" or plain seconds -> milliseconds. */
const duration = z
  .string()
  .regex(/^\d+(\.\d+)?[smhd]?$/, 'must be a duration like 7d, 12h, 30m, 45s or seconds')
  .transform((s) => {
    const unit = { s: 1, m: 60, h: 3600, d: 86400 }[s.slice(-1)] ?? 1;
    return Math.round(parseFloat(s) * unit * 1000);
  })
  .meta(allowed('a duration: a number with `s`, `m`, `h` or `d`, or plain seconds'));
const flag = z
  .enum(['0', '1', 'true', 'false'])
  .transform((v) => v === '1' || v === 'true')
  .meta(allowed('`0`, `1`, `true`, `false`'));

export const ALL_QUEUES = ['model', 'infer', 'batch', 'score', 'train', 'compress', 'infer-gpu', 'score-gpu'] as const;
export type QueueName = (typeof ALL_QUEUES)[number];
/** Work that asks for `device: "gpu"` goes to the GPU twin of its queue, which only cuda workers consume. */
export const GPU_TWINS: Partial<Record<QueueName, QueueName>> = { infer: 'infer-gpu', score: 'score-gpu' };
export const isGpuQueue = (q: QueueName) => q.endsWith('-gpu');

const CORES = Math.max(1, os.availableParallelism());

/**
 * Each entry: [schema with its default, meaning, and the default as shown where the schema's is
 * machine-dependent or in other units]. The configuration table in docs/operations.md is configTable()'s
 * output (npm run docs:config writes it; test/unit/core/config.test.ts fails when they differ).
 */
export const configKeys = {
  MODELQ_REDIS_URL: [
    z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .refine((u) => URL.canParse(u), 'is not a valid URL (a password with @, / or : must be percent-encoded)')
      .meta(allowed('a `redis://` or `rediss://` URL (`redis://:password@host:port/db`)'))
      .default('redis://127.0.0.1:6379'),
    'Redis connection URL.',
  ],
  MODELQ_PREFIX: [
    z
      .string()
      .regex(/^[a-zA-Z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, _ or -')
      .meta(allowed('1-32 letters, digits, `_` or `-`'))
      .default('modelq'),
    'Prefix of every Redis key and queue; the platform wraps it in braces (`{modelq}`) so all keys share one cluster slot.',
  ],
  MODELQ_DATA_DIR: [z.string().min(1).meta(allowed('a directory path')).default('./data'), 'Root of the filesystem artifact store (models, batch files).'],
  MODELQ_REDIS_CLUSTER: [
    z
      .string()
      .regex(/^\s*[^\s,:]+:\d+\s*(,\s*[^\s,:]+:\d+\s*)*$/, 'must be comma-separated host:port seed nodes')
      .meta(allowed('comma-separated `host:port`'))
      .optional(),
    'Redis Cluster seed nodes `host:port,host:port`; when set, producer, workers and dashboard use a cluster client (credentials and TLS from `MODELQ_REDIS_URL`).',
  ],
  MODELQ_STORE: [z.enum(['fs', 's3']).default('fs'), 'Artifact store: `fs` (`MODELQ_DATA_DIR`) or `s3` (S3, MinIO; no shared disk between machines).'],
  MODELQ_S3_BUCKET: [
    z.string().min(3).max(63).meta(allowed('3-63 characters; required with `MODELQ_STORE=s3`')).optional(),
    "Bucket of the `s3` store (required with `MODELQ_STORE=s3`). Credentials the AWS SDK's usual way: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, profile, instance role.",
  ],
  MODELQ_S3_ENDPOINT: [z.string().url().optional(), 'URL of a non-AWS S3 server (`http://minio:9000`); path-style addressing is used then.', 'unset (AWS)'],
  MODELQ_S3_REGION: [z.string().min(1).default('us-east-1'), 'Region the `s3` store signs for.'],
  MODELQ_S3_SSE: [
    z.enum(['', 'AES256', 'aws:kms']).default(''),
    'Server-side encryption the `s3` store asks for on every write (`AES256` or `aws:kms`); empty: none (the bucket default).',
  ],
  MODELQ_S3_SSE_KMS_KEY_ID: [z.string().default(''), "KMS key id sent with `MODELQ_S3_SSE=aws:kms`; empty: the bucket's default KMS key."],
  MODELQ_MASTER_KEY: [
    z.string().default(''),
    "Master keys for encryption at rest (AES-256-GCM per object, each object's data key wrapped by a master key): comma-separated base64 32-byte keys, the first wraps new objects, the others only unwrap (for `modelq rotate-key`). Empty (and no `MODELQ_MASTER_KEY_FILE`): objects are stored in plaintext.",
  ],
  MODELQ_MASTER_KEY_FILE: [
    z.string().default(''),
    'File holding the master keys instead of `MODELQ_MASTER_KEY`: one base64 32-byte key per line, the first current.',
  ],
  MODELQ_CACHE_DIR: [
    z.string().min(1).meta(allowed('a directory path')).default(path.join(os.tmpdir(), 'modelq-cache')),
    'Where a worker keeps models downloaded from an object store, by sha256 (unused with `fs`).',
    '`<os tmpdir>/modelq-cache`',
  ],
  MODELQ_BIND: [
    z
      .string()
      .refine((a) => net.isIP(a) !== 0, 'must be an IP address such as 127.0.0.1, 0.0.0.0 or ::')
      .meta(allowed('an IPv4 or IPv6 address'))
      .default('127.0.0.1'),
    "Address every listener binds (producer HTTP and gRPC, dashboard): loopback only by default; `0.0.0.0` (or `::`, or one interface) serves other machines, preferably behind a TLS proxy and with API keys. The Docker image sets `0.0.0.0` (Compose publishes the ports on the host's `MODELQ_BIND`, default `127.0.0.1`).",
  ],
  MODELQ_PORT: [int(1, 65535).default(8080), 'HTTP port of the producer (API, /v2, /metrics, /openapi.json).'],
  MODELQ_GRPC_PORT: [
    int(0, 65535).default(8001),
    'Port of the inference protocol over gRPC (`inference.GRPCInferenceService`, served by the producer); `0` turns it off.',
  ],
  MODELQ_GRPC_MAX_MESSAGE_MB: [int(1, 4096).default(64), "Largest gRPC message received or sent, in MiB (gRPC's own default is 4)."],
  MODELQ_GRPC_LEAN: [
    flag.default(true),
    'Serve gRPC ModelInfer straight from node:http2 (length-prefixed frames read and written by hand) in front of grpc-js, which answers every other method through a loopback hop; false: grpc-js serves the port alone.',
  ],
  MODELQ_GRPC_STREAM_WINDOW: [
    int(1, 65_536).default(128),
    'Requests one gRPC ModelStreamInfer call may have outstanding (read, not yet answered); past it the server reads no more of that stream until answers go out.',
  ],
  MODELQ_DASHBOARD_PORT: [int(1, 65535).default(8081), 'HTTP port of the dashboard: the results UI at `/`, bull-board at `/queues`.'],
  MODELQ_PRODUCER_URL: [
    z.string().url().optional(),
    "Where the dashboard sends the UI's API calls (it proxies `/api/*` there, so the browser talks to one origin).",
    '`http://127.0.0.1:<MODELQ_PORT>` (`MODELQ_BIND` instead when that is one address)',
  ],
  MODELQ_DASHBOARD_ADMIN: [
    flag.default(false),
    'Set to 1 to allow retry/remove actions in the dashboard when it runs without API keys; read-only otherwise. With keys, only `platform` keys open it, and they may act.',
  ],
  MODELQ_QUEUES: [
    z
      .string()
      .default(ALL_QUEUES.filter((q) => !q.endsWith('-gpu')).join(','))
      .transform((s, ctx) => {
        const names = s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
        for (const n of names) {
          if (!(ALL_QUEUES as readonly string[]).includes(n)) {
            ctx.addIssue({ code: 'custom', message: `unknown queue "${n}" (known: ${ALL_QUEUES.join(', ')})` });
          }
        }
        return names as QueueName[];
      })
      .meta(allowed(`comma-separated, of ${ALL_QUEUES.map((q) => `\`${q}\``).join(', ')}`)),
    'Queues this worker consumes (default: every CPU queue). A worker with `MODELQ_DEVICE=cuda` also takes their GPU twins (`infer-gpu`, `score-gpu`); a CPU worker never does.',
  ],
  MODELQ_DEVICE: [
    z.enum(['cpu', 'cuda']).default('cpu'),
    '`cuda` asks for the CUDA execution provider and falls back to CPU with one warning when it cannot load.',
  ],
  MODELQ_ENGINE_THREADS: [
    int(1, 256).default(1),
    'Engine worker threads per worker process; they parse batch rows and run the model, so the machine has one per core.',
    'cores / `MODELQ_WORKERS` (at least 1)',
  ],
  MODELQ_ENGINE_INTRA_OP_THREADS: [
    int(1, 256).default(1),
    'onnxruntime intra-op threads per session; 1 keeps threads from fighting over cores (the engine threads already use them all).',
  ],
  MODELQ_ENGINE_CACHE_MB: [int(1, 1_000_000).default(2048), 'Bound on cached sessions per engine thread (estimated by model file size).'],
  MODELQ_ENGINE_THREAD_MEMORY_MB: [
    int(32, 1_048_576).default(1024),
    "V8 heap bound of each engine thread, in MiB (`resourceLimits`): a task that parses or builds more than this (a hostile file's rows) fails saying so and the thread is replaced, instead of the worker dying. onnxruntime's own memory (sessions, tensors) is outside it.",
  ],
  MODELQ_ENGINE_RUN_TIMEOUT_MS: [
    int(100, 3_600_000).default(120_000),
    'Longest an engine task other than a batch chunk (an online or explanation run, a model load or check) may hold its thread; past it the thread is replaced and the task fails saying so.',
  ],
  MODELQ_CHUNK_TIMEOUT_MS: [
    int(100, 86_400_000).default(600_000),
    'Longest one chunk of a batch may take on a worker (reading, scoring, writing); past it the chunk fails saying so, its engine threads stopped and replaced.',
  ],
  MODELQ_POISON_ATTEMPTS: [
    int(1, 100).default(2),
    'Attempts of a batch chunk that overran its time or memory budget or took its engine thread down; then (or once lost with its worker more times than this) it fails for good and its batch ends `failed` with the reason.',
  ],
  MODELQ_WARM_RECENT: [
    duration.default(86400 * 1000),
    'A starting worker that serves online requests loads the models used within this long (`1d`, `12h`; `0`: none), most recent first, as many as `MODELQ_ENGINE_CACHE_MB` holds. New versions are loaded when registered, whatever this says.',
    '`1d`',
  ],
  MODELQ_WORKERS: [
    int(0, 64).default(Math.min(2, CORES)),
    'Worker processes started by `npm start`; also divides the cores for the `MODELQ_ENGINE_THREADS` default, so a worker run on its own should say `MODELQ_WORKERS=1`.',
    '`2` (`1` on a single core)',
  ],
  MODELQ_INFER_CONCURRENCY: [int(1, 10_000).default(64), 'Concurrent jobs per worker process on the infer queue.'],
  MODELQ_INFER_TIMEOUT_MS: [
    int(10, 600_000).default(30_000),
    'How long an online request waits for its answer before 504; time the worker spends loading the model does not count (past the timeout while it loads: 503 with Retry-After).',
  ],
  MODELQ_ONLINE_TRANSPORT: [
    z.enum(['bullmq', 'streams']).default('streams'),
    'How the producer hands coalesced online requests to workers (workers serve both): `streams` (default, about half the CPU per request), an entry of raw tensor bytes on one Redis Stream per queue read by a consumer group, answers pushed back on a channel of the producer, entries of a dead worker taken up by another after `MODELQ_JOB_LOCK_MS`, held while the infer queue is paused; `bullmq`, a job per coalesced group on the infer queue, visible on the dashboard and kept when failed (docs/online-transport.md). Explanations, batches, training and compression always travel as BullMQ jobs.',
  ],
  MODELQ_REGISTER_TIMEOUT_MS: [int(100, 600_000).default(60_000), 'How long a model upload waits for a worker to check the file before 504.'],
  MODELQ_MAX_REQUEST_MB: [int(1, 4096).default(32), 'Largest accepted JSON request body, in MiB (413 above).'],
  MODELQ_MAX_UPLOAD_MB: [int(1, 1_048_576).default(4096), 'Largest accepted upload (models, batch files), in MiB (413 above).'],
  MODELQ_JOB_LOCK_MS: [
    int(1000, 3_600_000).default(30_000),
    'Job lock duration: a job whose worker died (SIGKILL, lost node) is taken up again after about this long.',
  ],
  MODELQ_SHUTDOWN_GRACE_MS: [
    int(0, 3_600_000).default(30_000),
    'On SIGTERM or Ctrl-C, how long requests in flight (producer) and active jobs (workers) may take to finish before the process exits anyway.',
  ],
  MODELQ_BATCH_CHUNK_ROWS: [int(1, 100_000).default(5000), 'Rows per chunk job of a batch when the request does not say (`chunkRows`).'],
  MODELQ_BATCH_CHUNK_BYTES: [
    int(1024, 1024 ** 3).default(32 * 1024 * 1024),
    "Most bytes per chunk job of a batch; a chunk ends at whichever of this and the chunk rows comes first. Bounds a worker's memory per chunk.",
    '`33554432` (32 MiB)',
  ],
  MODELQ_FAST_ROWS: [
    flag.default(true),
    "Batch rows are read straight into the run's arrays by hand-written fast paths: JSONL and CSV rows of FP32 models, numeric Parquet columns (PLAIN or dictionary pages); `0` turns them off, to re-measure (`npm run bench batch`, `npm run bench parquet-decode`; results are identical either way).",
  ],
  MODELQ_MAX_ROW_BYTES: [
    int(64, 1024 ** 3).default(16 * 1024 * 1024),
    'Longest row of a batch or dataset file: a longer batch row is an error row (a longer CSV header a 400); never held in memory whole.',
  ],
  MODELQ_PIPELINE_MAX_CROPS: [
    int(1, 1_000_000).default(4096),
    'Most crops one request (or one group of batch rows) of a pipeline cuts for a step run per detected box: rows x boxes; more is refused (400 online, error rows in a batch) before any crop is made.',
    '`4096`',
  ],
  MODELQ_MAX_IMAGE_PIXELS: [
    int(1, 2 ** 31).default(40_000_000),
    'Most pixels (width x height, read from the file header before decoding) of an image fed to a model with declared processing; a larger one is refused undecoded (an error row in a batch, 400 online), so a decompression bomb never takes memory.',
    '`40000000`',
  ],
  MODELQ_MAX_PROCESSING_FILE_MB: [
    int(1, 4096).default(64),
    'Largest file stored with a version for its declared processing (a tokenizer.json, PUT /v1/models/{name}/versions/{v}/processing/files/{file}); 413 above.',
    '`64`',
  ],
  MODELQ_BATCH_MAX_ROWS: [int(1, 1_000_000_000).default(100_000_000), 'Most rows one batch file may have (400 above).'],
  MODELQ_OPENAI_MAX_LINE_BYTES: [
    int(1024, 1024 ** 3).default(8 * 1024 * 1024),
    'Longest line of an OpenAI batch input file (newline included): a batch with a longer line fails validation naming the line and this key, without reading the rest of it.',
    '`8388608` (8 MiB)',
  ],
  MODELQ_BATCH_MAX_CHUNKS: [
    int(1, 1_000_000).default(20_000),
    'Most chunk jobs one batch may have (400 naming it above, refused while the upload streams): each is a job in Redis and a child of the flow, so a tiny `chunkRows` on a large file must not make hundreds of thousands. The default lets `MODELQ_BATCH_MAX_ROWS` rows through at the default chunk rows; Parquet chunks are row groups.',
  ],
  MODELQ_PARQUET_MAX_FOOTER_BYTES: [
    int(1024, 1024 ** 3).default(16 * 1024 * 1024),
    "Largest Parquet footer (the file's metadata) read at submit and per chunk; a larger one is a 400 before it is parsed. The footer is parsed in a worker thread with a memory bound and a time limit (`MODELQ_PARQUET_FOOTER_TIMEOUT`), off the producer's event loop.",
    '`16777216` (16 MiB)',
  ],
  MODELQ_PARQUET_FOOTER_TIMEOUT: [
    duration.default(10_000),
    'Longest time parsing one Parquet footer may take at submit (a 400 after it); the thread doing it is ended.',
    '`10s`',
  ],
  MODELQ_PARQUET_MAX_GROUP_ROWS: [
    int(1, 1_000_000_000).default(4 * 1024 * 1024),
    'Most rows in one Parquet row group (a row group is one chunk job): a file with a larger one is a 400 at submit. Bounds what a worker holds for a chunk.',
  ],
  MODELQ_PARQUET_MAX_PAGE_VALUES: [
    int(1, 1_000_000_000).default(4 * 1024 * 1024),
    "Most values (level entries) one Parquet page may declare, and most values in a dictionary page; checked with the page's sizes before anything is allocated, and a file past it fails its chunk with the reason.",
  ],
  MODELQ_PARQUET_MAX_PAGE_BYTES: [
    int(1024, 1024 ** 3).default(64 * 1024 * 1024),
    'Largest uncompressed size one Parquet page may declare (it is allocated before decompressing); a file past it fails its chunk with the reason.',
    '`67108864` (64 MiB)',
  ],
  MODELQ_BATCH_TTL: [
    duration.default(7 * 86400 * 1000),
    'How long a batch and its files are kept after submit (`7d`, `12h`, `30m`, seconds); the workers remove expired ones.',
    '`7d`',
  ],
  MODELQ_BATCH_ROOTS: [
    z
      .string()
      .default('{}')
      .transform((s, ctx) => {
        let v: unknown;
        try {
          v = JSON.parse(s);
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON' });
          return z.NEVER;
        }
        const ok =
          typeof v === 'object' &&
          v !== null &&
          !Array.isArray(v) &&
          Object.values(v).every(
            (r) => Array.isArray(r) && r.every((u) => typeof u === 'string' && /^(s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/|store:)/.test(u)),
          );
        if (!ok) {
          ctx.addIssue({ code: 'custom', message: 'must map each tenant to a list of "s3://bucket/prefix/" or "store:prefix/" roots' });
          return z.NEVER;
        }
        return v as Record<string, string[]>;
      })
      .meta(allowed('JSON `{ "<tenant>": ["s3://<bucket>/<prefix>/", "store:<prefix>/"] }`')),
    "Where each tenant may read and write batches by reference (`input.uri`, `output.uri`); a tenant with no roots cannot submit one (403). Without API keys the tenant is `default`. Objects are read and written with the platform's own S3 settings and credentials.",
    '`{}` (none)',
  ],
  MODELQ_SCORE_CONCURRENCY: [
    int(1, 256).default(2),
    'Chunks one worker process scores at once; a JSONL/CSV chunk keeps up to 4 segments on the engine threads, a Parquet chunk (a row group) one.',
    'engine threads + 1, at least `2`',
  ],
  MODELQ_API_KEYS: [
    z
      .string()
      .meta(
        allowed(
          'JSON `{ "<key>": { "tenant": "<name>", "scopes": [...] } }`; each key at least 16 characters, printable ASCII without spaces; tenant 1-64 letters, digits, `_` `.` `-`; scopes of `read`, `infer`, `submit`, `publish`, `admin`, `platform`',
        ),
      )
      .optional(),
    'API keys, tenants and scopes (`read`, `infer`, `submit`, `publish`, `admin`, `platform`) as JSON (see Security).',
  ],
  MODELQ_API_KEYS_FILE: [z.string().meta(allowed('a readable file path; its content as `MODELQ_API_KEYS`')).optional(), 'A file holding the same JSON.'],
  MODELQ_AUTH: [z.enum(['optional', 'required']).default('optional'), '`required` refuses to start without keys.'],
  MODELQ_RATE_LIMIT: [
    z
      .string()
      .regex(/^\d+\/(s|m|h)$/, 'must look like 100/s, 6000/m or 100000/h')
      .meta(allowed('`<count>/s`, `/m` or `/h`'))
      .optional(),
    'Requests per key (per address when open) and window: `100/s`, `6000/m`, `100000/h`; no limit when unset.',
  ],
  MODELQ_MAX_INFLIGHT: [int(1, 1_000_000).default(2048), 'Online inference requests one producer holds at once; past it, 429 with Retry-After.'],
  MODELQ_MAX_INFLIGHT_PER_MODEL: [
    int(1, 1_000_000).default(1024),
    'Online inference requests one producer holds at once for one model; past it, 429 with Retry-After (one slow model cannot take every slot).',
  ],
  MODELQ_REDIS_MEMORY_HIGH: [
    z.coerce.number().gt(0).max(1).default(0.9),
    'Fraction of Redis maxmemory past which the producer refuses new work (503 with Retry-After) until it drains; no effect when Redis has no maxmemory.',
  ],
  MODELQ_TRAIN_MAX_MEMORY_MB: [
    int(64, 1_048_576).default(4096),
    'Memory a training (or distillation) process may use, in MiB (V8 heap limit and resident memory, watched); past it the process is killed and the job fails saying so.',
  ],
  MODELQ_TRAIN_TIMEOUT_S: [
    int(1, 30 * 86400).default(86400),
    'How long one training (or distillation) attempt may run, in seconds; past it the process is killed and the job fails saying so.',
  ],
  MODELQ_COMPRESS_TIMEOUT_S: [
    int(1, 30 * 86400).default(86400),
    'How long one compression attempt may run, in seconds; past it the job fails saying so and registers nothing (its distillation also stops at `MODELQ_TRAIN_TIMEOUT_S`).',
  ],
  MODELQ_COMPRESS_SAMPLES_MAX_MB: [
    int(1, 65_536).default(64),
    'Largest `samples` file a compression request may upload (JSONL, CSV or Parquet inputs to measure agreement on), in MiB (400 above).',
  ],
  MODELQ_COMPRESS_SAMPLES_MAX_ROWS: [
    int(1, 10_000_000).default(100_000),
    "Most rows of a compression request's `samples` file (every row runs through the parent and each candidate); 400 above.",
  ],
  MODELQ_VALIDATE_TIMEOUT_MS: [
    int(100, 86_400_000).default(600_000),
    "How long checking an OpenAI-compatible batch's input file may take; past it the batch fails saying so.",
  ],
  MODELQ_EXPLAIN_MAX_EVALS: [
    int(1, 1_000_000_000).default(5_000_000),
    'Most model evaluations one explained request may cost (rows x explainSamples x background rows x (features - 1)); 400 above.',
  ],
  MODELQ_EXPLAIN_MAX_BYTES: [
    int(1024, 1_099_511_627_776).default(1_073_741_824),
    'Most bytes of perturbed input one explained request (or one explained run of a batch) may feed the model: occluded texts (each row once per distinct word) or Shapley points (evaluations x their width); 400 above, and the worker refuses the same.',
  ],
  MODELQ_EXPLAIN_RUN_ROWS: [
    int(1, 10_000_000).default(1024),
    'Most perturbed rows per onnxruntime run of an explanation (at least one permutation walk: background rows x (features - 1)); small runs keep the layer activations in cache (1,024 ran 1.7x faster than 16,384 on the MLP 20-256-1024-1024-10).',
  ],
  MODELQ_DRIFT_WINDOW: [
    int(10, 100_000_000).default(10_000),
    "Rows of online traffic a version's drift report covers: counts per reference bin in two generations of half this many rows each, so the report covers the last W/2 to W sampled rows.",
  ],
  MODELQ_DRIFT_SAMPLE: [
    z.coerce.number().min(0).max(1).default(0.1),
    "Share of online requests whose rows are counted into their version's drift window (0 turns sampling off); only versions with a reference profile are sampled.",
  ],
  MODELQ_DRIFT_REFERENCE_ROWS: [
    int(0, 100_000).default(1000),
    'A version without a reference profile (an uploaded one) gets one from its first this many scored rows (online and batch), gathered in Redis until then; 0 turns this off.',
  ],
  MODELQ_DRIFT_WARN: [
    z.coerce.number().gt(0).default(0.1),
    'Below `MODELQ_DRIFT_ALERT`. PSI (numeric features) and Jensen-Shannon distance (categorical) at or above which a feature is `warn`.',
  ],
  MODELQ_DRIFT_ALERT: [z.coerce.number().gt(0).default(0.25), 'PSI and Jensen-Shannon distance at or above which a feature is `alert`.'],
  MODELQ_LOG_LEVEL: [z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), 'pino log level (logs on stdout, with job ids).'],
  MODELQ_LOG_FORMAT: [
    z.enum(['auto', 'json', 'pretty']).default('auto'),
    'Log lines: `json` (one pino object a line, for log collectors), `pretty` (short readable lines), `auto` (pretty on a terminal, else JSON).',
  ],
  MODELQ_AUDIT_LOG: [
    z.string().default(''),
    'File the producer and dashboard append their access/audit lines to (JSON, one per state-changing request); empty: stdout, at level info in JSON logs, in readable logs only with `MODELQ_LOG_LEVEL=debug`.',
  ],
  MODELQ_SIGNING_KEY_FILE: [
    z.string().default(''),
    "PEM file of the Ed25519 key that signs every registered version (PKCS#8); needed where versions are registered (producer, training and compression workers). Empty: a key generated on first use (with a warning) under the user's local state directory (`$XDG_STATE_HOME/modelq`, else `~/.local/state/modelq`); set one shared key on every machine of a real deployment.",
    '`<local state>/modelq/signing-ed25519.pem`',
  ],
  MODELQ_TRUSTED_KEYS: [
    z.string().default(''),
    'Comma-separated publisher public keys (base64 of the Ed25519 SPKI DER, as `modelq verify` and the version record print them) whose signatures an upload may carry (`x-modelq-signature`).',
  ],
  MODELQ_REQUIRE_SIGNED_UPLOADS: [
    z.string().default(''),
    'Comma-separated tenants (or `*`) whose uploads must carry a signature by a key in `MODELQ_TRUSTED_KEYS`; an unsigned or untrusted upload is refused with 403.',
  ],
  MODELQ_AUDIT_STREAM_MAX: [
    int(0, 1_000_000_000).default(1_000_000),
    'Entries the audit stream in Redis keeps (`GET /v1/audit`; approximately, oldest out first): one per state-changing request or refusal, beside `MODELQ_AUDIT_LOG`; 0 writes none.',
  ],
  MODELQ_PAYLOAD_LOG_FLUSH_MS: [
    int(100, 3_600_000).default(10_000),
    'Payload logs (`PUT /v1/models/{name}/logging`): a producer writes the records it buffered for a version and hour as a Parquet part at least this often.',
  ],
  MODELQ_PAYLOAD_LOG_PART_MB: [
    int(1, 256).default(4),
    "Payload logs: a version's buffered records are written as a part as soon as their JSON reaches this many MiB.",
  ],
  MODELQ_PAYLOAD_LOG_BUFFER_MB: [
    int(1, 4096).default(64),
    'Payload logs: MiB of records a producer holds (buffered or being written) at most; a sampled request past it is not logged and is counted in `modelq_payload_log_dropped_total` (an answer never waits for its log).',
  ],
  MODELQ_PAYLOAD_LOG_MAX_RECORD_KB: [
    int(1, 65_536).default(256),
    'Payload logs: a request whose inputs and outputs (JSON) exceed this many KiB is logged without them (`truncated`: true).',
  ],
  MODELQ_PAYLOAD_LOG_CODEC: [z.enum(['SNAPPY', 'UNCOMPRESSED']).default('SNAPPY'), 'Payload logs: the compression of the Parquet parts.'],
  MODELQ_RETENTION_INTERVAL_MS: [
    int(1000, 86_400_000).default(3_600_000),
    "How often the retention job runs (a job scheduler on the `model` queue): it erases what each tenant's retention rules (`PUT /v1/tenants/{id}/retention`) say has expired.",
  ],
  MODELQ_RETENTION_DAY_MS: [
    int(1, 86_400_000).default(86_400_000),
    'How long a "day" of a retention rule is, in ms: 86400000; tests set less to see rules expire.',
  ],
  MODELQ_ROLLOUT_INTERVAL_MS: [
    int(100, 3_600_000).default(30_000),
    'How often a running rollout is evaluated (a job scheduler on the `model` queue per rollout): each evaluation advances it, rolls it back or waits. Producers add their per-version figures to Redis every quarter of this (at most every second).',
  ],
  MODELQ_STATS_INTERVAL_MS: [int(100, 600_000).default(5000), 'How often workers publish their figures into Redis for `/metrics`.'],
} as const;

/** The default as the table shows it: `value`, `a,b` for lists, `0`/`1` for flags, unset when there is none. */
function shownDefault(schema: z.ZodType): string {
  const r = schema.safeParse(undefined);
  const v: unknown = r.success ? r.data : undefined;
  if (v === undefined) return 'unset';
  if (typeof v === 'boolean') return v ? '`1`' : '`0`';
  return `\`${Array.isArray(v) ? v.join(',') : String(v)}\``;
}

const fmt = (n: number) => (Number.isInteger(n) && Math.abs(n) >= 10_000 ? n.toLocaleString('en-US') : String(n));

/**
 * What a value must be, as the table shows it: from the schema (integer ranges, bounds, choices,
 * URLs, lengths) or from its `allowed` metadata where a pattern or transform says it.
 */
export function allowedValues(schema: z.ZodType): string {
  let s: z.ZodType = schema;
  for (;;) {
    const said = (s.meta() as { allowed?: string } | undefined)?.allowed;
    if (said) return said;
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap() as z.ZodType;
    else break;
  }
  if (s instanceof z.ZodNumber) {
    const checks = (s.def.checks ?? []).map((c) => c._zod.def as { check: string; value?: number; inclusive?: boolean });
    const lo = checks.find((c) => c.check === 'greater_than');
    const hi = checks.find((c) => c.check === 'less_than');
    const kind = s.isInt ? 'integer' : 'number';
    if (lo && hi && lo.inclusive && hi.inclusive) return `${kind} ${fmt(lo.value!)}-${fmt(hi.value!)}`;
    const parts = [lo && `${lo.inclusive ? '>=' : '>'} ${fmt(lo.value!)}`, hi && `${hi.inclusive ? '<=' : '<'} ${fmt(hi.value!)}`].filter(Boolean);
    return parts.length ? `${kind} ${parts.join(', ')}` : kind;
  }
  if (s instanceof z.ZodEnum) return s.options.map((o) => `\`${String(o)}\``).join(', ');
  if (s instanceof z.ZodString) {
    if (s.format === 'url') return 'a URL';
    if (s.minLength !== null && s.maxLength !== null) return `${s.minLength}-${s.maxLength} characters`;
    if (s.minLength) return `not empty`;
    return 'text';
  }
  return 'see meaning';
}

/** The configuration table of docs/operations.md (markdown), rendered from configKeys. */
export function configTable(): string {
  const rows = Object.entries(configKeys).map(([key, entry]) => {
    const [schema, meaning, shown] = entry as readonly [z.ZodType, string, string?];
    return `| \`${key}\` | ${shown ?? shownDefault(schema)} | ${allowedValues(schema)} | ${meaning} |`;
  });
  return ['| Key | Default | Allowed | Meaning |', '|---|---|---|---|', ...rows].join('\n');
}

type Keys = typeof configKeys;
export type Config = Readonly<{ [K in keyof Keys]: z.output<Keys[K][0]> }>;

export class ConfigError extends Error {}

/** A URL (or any text holding URLs) as it may be logged: each password replaced by "***". */
export function maskUrl(url: string): string {
  // Not through new URL(): a URL that fails to parse must not be printed whole either.
  return url.replace(/\b([a-z][a-z0-9+.-]*:\/\/)([^@/?#\s]*)@/gi, (_m, scheme: string, cred: string) => {
    const i = cred.indexOf(':');
    return `${scheme}${i >= 0 ? `${cred.slice(0, i)}:***` : '***'}@`;
  });
}

/** Keys whose values are never printed whole, even when invalid. */
const SHOWN: Record<string, (raw: string) => string> = { MODELQ_REDIS_URL: maskUrl, MODELQ_API_KEYS: () => '<hidden>' };

/**
 * Exit status of a process that stops on its configuration (EX_CONFIG of sysexits.h): `npm start`
 * does not restart a child that exits with it, since a restart would meet the same configuration.
 */
export const EXIT_CONFIG = 78;

/** Every problem of the environment's configuration (each naming its key), and the config when there is none. */
export function parseConfig(env: NodeJS.ProcessEnv = process.env): { cfg: Config | null; problems: string[]; values: Partial<Config> } {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, [schema]] of Object.entries(configKeys)) {
    const raw = env[key];
    const r = (schema as z.ZodType).safeParse(raw === '' ? undefined : raw);
    if (r.success) out[key] = r.data;
    else problems.push(`${key}=${JSON.stringify(raw !== undefined && SHOWN[key] ? SHOWN[key](raw) : raw)}: ${r.error.issues.map((i) => i.message).join('; ')}`);
  }
  problems.push(...unknownKeyProblems(env, Object.keys(configKeys)));
  // Rules between keys.
  if (out.MODELQ_STORE === 's3' && !out.MODELQ_S3_BUCKET && !problems.some((p) => p.startsWith('MODELQ_S3_BUCKET=')))
    problems.push('MODELQ_S3_BUCKET: required when MODELQ_STORE=s3');
  if (typeof out.MODELQ_DRIFT_WARN === 'number' && typeof out.MODELQ_DRIFT_ALERT === 'number' && out.MODELQ_DRIFT_WARN >= out.MODELQ_DRIFT_ALERT)
    problems.push(`MODELQ_DRIFT_WARN=${out.MODELQ_DRIFT_WARN}: must be below MODELQ_DRIFT_ALERT=${out.MODELQ_DRIFT_ALERT}`);
  if (problems.length) return { cfg: null, problems, values: out as Partial<Config> };
  // Defaults that depend on other keys: the cores are shared by the worker processes.
  const unset = (k: string) => env[k] === undefined || env[k] === '';
  if (unset('MODELQ_ENGINE_THREADS')) out.MODELQ_ENGINE_THREADS = Math.max(1, Math.floor(CORES / Math.max(1, out.MODELQ_WORKERS as number)));
  if (unset('MODELQ_SCORE_CONCURRENCY')) out.MODELQ_SCORE_CONCURRENCY = Math.max(2, (out.MODELQ_ENGINE_THREADS as number) + 1);
  return { cfg: Object.freeze(out) as Config, problems, values: out as Partial<Config> };
}

/** The host part of a URL that reaches, from this machine, a listener bound to `bind` (a wildcard is reached on loopback). */
export function localUrlHost(bind: string): string {
  if (bind === '0.0.0.0' || bind === '::') return '127.0.0.1';
  return net.isIPv6(bind) ? `[${bind}]` : bind;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const { cfg, problems } = parseConfig(env);
  if (!cfg) throw new ConfigError(`invalid configuration: ${problems.join(', ')}`);
  return cfg;
}

/** Prints configuration problems, one a line, and exits EXIT_CONFIG. */
export function exitOnConfigProblems(problems: string[]): never {
  process.stderr.write(
    `modelq: invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}; see the Configuration table in docs/operations.md):\n` +
      problems.map((p) => `  - ${p}\n`).join(''),
  );
  process.exit(EXIT_CONFIG);
}

/** Loads config or prints every problem and exits EXIT_CONFIG: for the processes' main files. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv = process.env): Config {
  const { cfg, problems } = parseConfig(env);
  return cfg ?? exitOnConfigProblems(problems);
}

/** The hash-tagged prefix of every key, e.g. "{modelq}". */
export const keyPrefix = (cfg: Pick<Config, 'MODELQ_PREFIX'>) => `{${cfg.MODELQ_PREFIX}}`;

// A real S3-protocol server (s3rver, files in a temp dir) on a loopback port, for the s3 store's
// tests; also runnable as its own process (`node test/unit/core/storage/s3-server.ts` via tsx) so
// a test can put it in another network namespace.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { S3Store } from '../../../../core/storage/s3-store.ts';

interface S3Object {
  content: (NodeJS.ReadableStream & { destroy(): void }) | null;
  range?: { start: number; end: number };
}
interface S3rverFsStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3Object | null>;
}
interface KoaContext {
  method: string;
  query: Record<string, unknown>;
  params?: Record<string, string>;
  path: string;
  status: number;
  body: unknown;
}
interface S3rverInstance {
  store: S3rverFsStore;
  middleware: ((ctx: KoaContext, next: () => Promise<void>) => Promise<void>)[];
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
const S3rver = createRequire(import.meta.url)('s3rver') as S3rverCtor;

/** s3rver's built-in account; the SDK signs with it and s3rver checks the signature. */
export const S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** Environment for a process whose store is this server; IMDS is off so nothing probes 169.254.169.254. */
export function s3Env(endpoint: string, bucket: string): Record<string, string> {
  return {
    MODELQ_STORE: 's3',
    MODELQ_S3_BUCKET: bucket,
    MODELQ_S3_ENDPOINT: endpoint,
    MODELQ_S3_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

export interface S3Server {
  endpoint: string;
  dir: string;
  /** Multipart uploads begun and neither completed nor aborted. */
  pendingUploads(bucket: string): string[];
  /** Every request the server has answered so far ("GET /bucket/key"), in order. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * Two gaps of s3rver 3.7.1 that real S3 and MinIO do not have, filled so the contract means the
 * same on both stores: AbortMultipartUpload (DELETE ?uploadId) answers 405, and the one-byte
 * range "bytes=0-0" returns the whole object (it reads end 0 as "no end").
 */
function patch(server: S3rverInstance): void {
  const store = server.store;
  server.middleware.unshift(async (ctx, next) => {
    const m = /^\/([^/]+)\/.+/.exec(ctx.path);
    const uploadId = ctx.query.uploadId;
    if (ctx.method === 'DELETE' && m && typeof uploadId === 'string' && /^[0-9a-f]+$/.test(uploadId)) {
      fs.rmSync(path.join(store.getResourcePath(m[1]!, undefined, 'uploads'), uploadId), { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    await next();
  });
  const getObject = store.getObject.bind(store);
  store.getObject = async (bucket, key, options) => {
    const o = await getObject(bucket, key, options);
    if (o?.content && options?.end === 0) {
      o.content.destroy();
      o.content = fs.createReadStream(store.getResourcePath(bucket, key, 'object'), { start: 0, end: 0 });
      o.range = { start: 0, end: 0 };
    }
    return o;
  };
}

export async function startS3Server(opts: { host?: string; port?: number; buckets?: string[] } = {}): Promise<S3Server> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-s3rver-'));
  const server = new S3rver({
    address: opts.host ?? '127.0.0.1',
    port: opts.port ?? 0,
    silent: true,
    directory: dir,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name })),
  });
  patch(server);
  const requests: string[] = [];
  server.middleware.unshift(async (ctx, next) => {
    requests.push(`${ctx.method} ${ctx.path}`);
    await next();
  });
  const { address, port } = await server.run();
  return {
    endpoint: `http://${address}:${port}`,
    dir,
    requests,
    pendingUploads: (bucket) => {
      const uploads = server.store.getResourcePath(bucket, undefined, 'uploads');
      return fs.existsSync(uploads) ? fs.readdirSync(uploads) : [];
    },
    async stop() {
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A store on a fresh bucket of `endpoint`. */
export async function freshBucketStore(endpoint: string, bucket = `b-${Math.random().toString(36).slice(2, 10)}`): Promise<S3Store> {
  const store = new S3Store({ bucket, endpoint, region: 'us-east-1', credentials: S3_CREDENTIALS, partSize: 5 * 1024 * 1024 });
  await store.ensureBucket();
  return store;
}

// As a process: S3_HOST, S3_PORT, S3_BUCKETS (comma-separated); prints {"endpoint": ...} when up, stops on SIGTERM.
if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const s = await startS3Server({
    host: process.env.S3_HOST ?? '127.0.0.1',
    port: Number(process.env.S3_PORT ?? 0),
    buckets: (process.env.S3_BUCKETS ?? '').split(',').filter(Boolean),
  });
  process.stdout.write(`${JSON.stringify({ endpoint: s.endpoint })}\n`);
  const bye = () => void s.stop().finally(() => process.exit(0));
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

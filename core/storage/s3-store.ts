// S3 ArtifactStore (AWS S3, MinIO, any S3-protocol server). A PUT replaces an object whole and
// atomically per key, so readers never see half an object; streamed bodies go up as a multipart
// upload that only becomes visible at CompleteMultipartUpload (and is aborted on any failure).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import {
  type ArtifactStore,
  ArtifactNotFoundError,
  type ByteRange,
  type ListedObject,
  type PutBody,
  type PutOptions,
  type PutResult,
  checkKey,
  TooLargeError,
} from './artifact-store.ts';

export interface S3StoreOptions {
  bucket: string;
  /** A non-AWS server (MinIO, s3rver): its URL; addressing is then path-style (http://host/bucket/key). */
  endpoint?: string;
  /** Default us-east-1; MinIO ignores it but the SDK needs one to sign. */
  region?: string;
  /** Default: the SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profiles, instance roles). */
  credentials?: S3ClientConfig['credentials'];
  /** Server-side encryption asked of S3 on every write: `AES256` or `aws:kms` (with `kmsKeyId`). Default none. */
  sse?: 'AES256' | 'aws:kms';
  kmsKeyId?: string;
  /** Multipart part size for streamed puts. Default 8 MiB (S3's minimum is 5 MiB; at most 10,000 parts). */
  partSize?: number;
}

const MiB = 1024 * 1024;
/** S3 allows at most 10,000 parts per multipart upload. */
const MAX_PARTS = 10_000;

type Sdk = typeof import('@aws-sdk/client-s3') & typeof import('@aws-sdk/lib-storage');
let sdkLoading: Promise<Sdk> | undefined;
/** The SDK takes a few hundred milliseconds to import: only processes that use S3 pay for it. */
const loadSdk = () => (sdkLoading ??= Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(([a, b]) => ({ ...a, ...b })));

const isNotFound = (e: unknown) => {
  const err = e as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NotFound' || err?.name === 'NoSuchKey' || err?.Code === 'NoSuchKey' || err?.$metadata?.httpStatusCode === 404;
};

export class S3Store implements ArtifactStore {
  readonly bucket: string;
  private readonly partSize: number;
  private readonly config: S3ClientConfig;
  private connected?: Promise<{ c: S3Client; m: Sdk }>;
  /** The SSE parameters of every PutObject, multipart upload and copy. */
  private readonly sse: { ServerSideEncryption?: 'AES256' | 'aws:kms'; SSEKMSKeyId?: string };

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.partSize = Math.max(5 * MiB, opts.partSize ?? 8 * MiB);
    this.sse = opts.sse ? { ServerSideEncryption: opts.sse, ...(opts.sse === 'aws:kms' && opts.kmsKeyId ? { SSEKMSKeyId: opts.kmsKeyId } : {}) } : {};
    this.config = {
      region: opts.region ?? 'us-east-1',
      ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      // Recent SDKs add CRC checksums to every request and validate them on responses; MinIO
      // versions and other S3-protocol servers reject or omit them. Only send what S3 requires.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    };
  }

  /** The SDK module and this store's client, made on first use. */
  private sdk(): Promise<{ c: S3Client; m: Sdk }> {
    return (this.connected ??= loadSdk().then((m) => ({ c: new m.S3Client(this.config), m })));
  }

  /** The underlying client, for tests and tools. */
  async client(): Promise<S3Client> {
    return (await this.sdk()).c;
  }

  /** An object store has no local files: the engine gets its models through workers/model-cache.ts. */
  localPath(_key: string): undefined {
    return undefined;
  }

  async put(key: string, body: PutBody, opts: PutOptions = {}): Promise<PutResult> {
    checkKey(key);
    const { c, m } = await this.sdk();
    const max = opts.maxBytes ?? Infinity;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      const buf = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      if (buf.length > max) throw new TooLargeError(max);
      await c.send(new m.PutObjectCommand({ Bucket: this.bucket, Key: key, Body: buf, ContentLength: buf.length, ...this.sse }));
      return { bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex') };
    }
    const hash = createHash('sha256');
    let bytes = 0;
    // The source's own failure (client gone, too large) is the one to report, not a later one
    // from aborting the multipart upload.
    let sourceError: unknown;
    const counted = Readable.from(
      (async function* () {
        try {
          for await (const chunk of body as AsyncIterable<Uint8Array>) {
            bytes += chunk.length;
            if (bytes > max) throw new TooLargeError(max);
            hash.update(chunk);
            yield chunk;
          }
        } catch (e) {
          sourceError = e;
          throw e;
        }
      })(),
      { objectMode: false },
    );
    // Parts must fit in 10,000 even at the size limit.
    const partSize = Number.isFinite(max) ? Math.max(this.partSize, Math.ceil(max / MAX_PARTS)) : this.partSize;
    const upload = new m.Upload({
      client: c,
      params: { Bucket: this.bucket, Key: key, Body: counted, ...this.sse },
      partSize,
      queueSize: 2, // parts in flight: memory is about (queueSize + 1) x partSize per upload
      leavePartsOnError: false, // abort the multipart upload: nothing becomes visible at `key`
    });
    try {
      await upload.done();
    } catch (e) {
      counted.destroy();
      throw sourceError ?? e;
    }
    return { bytes, sha256: hash.digest('hex') };
  }

  async get(key: string): Promise<Buffer> {
    const { c, m } = await this.sdk();
    try {
      const r = await c.send(new m.GetObjectCommand({ Bucket: this.bucket, Key: checkKey(key) }));
      const arr = await r.Body!.transformToByteArray();
      return Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength);
    } catch (e) {
      throw isNotFound(e) ? new ArtifactNotFoundError(key) : e;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    checkKey(key);
    if (range && range.end <= range.start) {
      // An empty range is not expressible as an HTTP Range; still fail for a missing key.
      if (!(await this.stat(key))) throw new ArtifactNotFoundError(key);
      return Readable.from([]);
    }
    const { c, m } = await this.sdk();
    try {
      const r = await c.send(
        new m.GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end - 1}` } : {}),
        }),
      );
      // A server or proxy that ignores Range answers with the whole object: never hand that out as the chunk.
      if (range && (r.ContentLength ?? 0) > range.end - range.start) {
        (r.Body as Readable).destroy();
        throw new Error(`the S3 server answered ${r.ContentLength} bytes for the range ${range.start}-${range.end - 1} of ${key}`);
      }
      return r.Body as Readable;
    } catch (e) {
      throw isNotFound(e) ? new ArtifactNotFoundError(key) : e;
    }
  }

  async stat(key: string): Promise<{ bytes: number } | null> {
    const { c, m } = await this.sdk();
    try {
      const r = await c.send(new m.HeadObjectCommand({ Bucket: this.bucket, Key: checkKey(key) }));
      return { bytes: r.ContentLength ?? 0 };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /** Copy then delete: the destination appears whole (a copy is atomic per key) but `from` lingers a moment. */
  async move(from: string, to: string): Promise<void> {
    checkKey(from);
    checkKey(to);
    const { c, m } = await this.sdk();
    try {
      // Single-request copies go up to 5 GiB, above MODELQ_MAX_UPLOAD_MB's default.
      await c.send(
        new m.CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          ...this.sse,
          CopySource: `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`,
        }),
      );
    } catch (e) {
      throw isNotFound(e) ? new ArtifactNotFoundError(from) : e;
    }
    await this.delete(from);
  }

  async delete(key: string): Promise<void> {
    const { c, m } = await this.sdk();
    await c.send(new m.DeleteObjectCommand({ Bucket: this.bucket, Key: checkKey(key) }));
  }

  /** Deletes `prefix` itself and everything under `prefix/`, like removing a directory (never "prefix2/..."). */
  async deletePrefix(prefix: string): Promise<void> {
    const p = checkKey(prefix.replace(/\/+$/, ''));
    const { c, m } = await this.sdk();
    let token: string | undefined;
    do {
      const page = await c.send(new m.ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${p}/`, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
      if (keys.length) {
        const r = await c.send(new m.DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }));
        if (r.Errors?.length) throw new Error(`could not delete ${r.Errors.length} objects under ${p}/: ${r.Errors[0]!.Code} ${r.Errors[0]!.Message}`);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await this.delete(p);
  }

  async list(prefix: string, limit: number): Promise<ListedObject[]> {
    const { c, m } = await this.sdk();
    const out: ListedObject[] = [];
    let token: string | undefined;
    do {
      // Whole pages (1,000 keys), cut here: s3rver fails a truncated listing with a small MaxKeys.
      const page = await c.send(new m.ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key) out.push({ key: o.Key, bytes: o.Size ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token && out.length < limit);
    return out.slice(0, limit);
  }

  /** Creates the bucket when it does not exist (tests, first start against an empty MinIO). */
  async ensureBucket(): Promise<void> {
    const { c, m } = await this.sdk();
    try {
      await c.send(new m.HeadBucketCommand({ Bucket: this.bucket }));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      await c.send(new m.CreateBucketCommand({ Bucket: this.bucket }));
    }
  }

  /** Closes the client's sockets (tests); the store is unusable afterwards. */
  close(): void {
    void this.connected?.then(({ c }) => c.destroy());
  }
}

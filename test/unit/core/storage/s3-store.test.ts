// The S3 store against a real S3-protocol server on loopback (s3rver): the shared contract, plus
// what only an object store has (no local path, multipart uploads that leave nothing on failure).
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { EncryptedStore, MasterKeys } from '../../../../core/storage/encrypted-store.ts';
import { createStore, S3Store, TooLargeError } from '../../../../core/storage/index.ts';
import { freshBucketStore, S3_CREDENTIALS, startS3Server, type S3Server } from './s3-server.ts';
import { storeContract } from './store-contract.ts';

let server: S3Server;
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
});

storeContract('S3Store', async () => {
  const store = await freshBucketStore(server.endpoint);
  return { store, cleanup: async () => store.close() };
});

// Encryption at rest holds the same contract over S3 (ranged reads of segments included).
storeContract('EncryptedStore(S3Store)', async () => {
  const store = await freshBucketStore(server.endpoint);
  return { store: new EncryptedStore(store, MasterKeys.parse([randomBytes(32).toString('base64')], 'test')), cleanup: async () => store.close() };
});

describe('S3Store', () => {
  it('asks for server-side encryption on every write when configured (MODELQ_S3_SSE)', async () => {
    const plain = await freshBucketStore(server.endpoint);
    const store = new S3Store({ bucket: plain.bucket, endpoint: server.endpoint, credentials: S3_CREDENTIALS, sse: 'aws:kms', kmsKeyId: 'key-1' });
    const sent: { command: string; input: Record<string, unknown> }[] = [];
    (await store.client()).middlewareStack.add(
      (next, context) => async (args) => {
        sent.push({ command: String(context.commandName), input: args.input as Record<string, unknown> });
        return next(args);
      },
      { step: 'initialize' },
    );
    await store.put('a.txt', 'small');
    await store.put('b.txt', Readable.from([Buffer.from('streamed')]));
    await store.move('a.txt', 'c.txt');
    const writes = sent.filter((s) => ['PutObjectCommand', 'CreateMultipartUploadCommand', 'CopyObjectCommand'].includes(s.command));
    expect(writes.map((w) => w.command).sort()).toEqual(['CopyObjectCommand', 'PutObjectCommand', 'PutObjectCommand']);
    for (const w of writes) expect(w.input).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'key-1' });
    expect((await store.get('c.txt')).toString()).toBe('small');
    store.close();
    plain.close();
  });

  it('has no local path, so workers go through the model cache', async () => {
    const store = await freshBucketStore(server.endpoint);
    expect(store.localPath('models/sha256/x.onnx')).toBeUndefined();
    store.close();
  });

  it('aborts the multipart upload of a failed streamed put: no object, no parts left', async () => {
    const store = await freshBucketStore(server.endpoint);
    const part = Buffer.alloc(5 * 1024 * 1024, 1);
    const failing = Readable.from(
      (async function* () {
        yield part;
        yield part;
        yield Buffer.from('x');
        throw new Error('client went away');
      })(),
    );
    await expect(store.put('batches/b/input', failing)).rejects.toThrow('client went away');
    await expect(store.put('batches/b/input', Readable.from([part, part, part]), { maxBytes: 12 * 1024 * 1024 })).rejects.toBeInstanceOf(TooLargeError);
    const objects = await (await store.client()).send(new ListObjectsV2Command({ Bucket: store.bucket }));
    expect(objects.Contents ?? []).toEqual([]);
    expect(server.pendingUploads(store.bucket)).toEqual([]);
    store.close();
  });

  it('is what createStore builds for MODELQ_STORE=s3, and needs a bucket', () => {
    const s = createStore({
      MODELQ_DATA_DIR: '/nowhere',
      MODELQ_STORE: 's3',
      MODELQ_S3_BUCKET: 'models',
      MODELQ_S3_ENDPOINT: server.endpoint,
      MODELQ_S3_REGION: 'eu-west-1',
    });
    expect(s).toBeInstanceOf(S3Store);
    (s as S3Store).close();
    expect(() => createStore({ MODELQ_DATA_DIR: '/nowhere', MODELQ_STORE: 's3' })).toThrow(/MODELQ_S3_BUCKET/);
  });
});

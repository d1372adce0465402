// The model cache: the fs store's own file, or one verified download per sha256 from an object store.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { modelArtifactKey } from '../../../core/registry.ts';
import { FsStore } from '../../../core/storage/index.ts';
import { localArtifactPath, localModelPath } from '../../../workers/model-cache.ts';
import { tinyMlp, tmpDir } from '../../fixtures/models.ts';
import { freshBucketStore, startS3Server, type S3Server } from '../core/storage/s3-server.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
let server: S3Server;
const dirs: string[] = [];
const dir = () => {
  const d = tmpDir('model-cache');
  dirs.push(d);
  return d;
};
beforeAll(async () => {
  server = await startS3Server();
});
afterAll(async () => {
  await server?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

describe('model cache', () => {
  it("uses the filesystem store's own file", async () => {
    const root = dir();
    const store = new FsStore(root);
    const bytes = tinyMlp();
    await store.put(modelArtifactKey(sha(bytes)), bytes);
    expect(await localModelPath(store, sha(bytes), dir())).toBe(path.join(root, modelArtifactKey(sha(bytes))));
  });

  it('downloads from an object store once, however many ask at once, and reuses the file', async () => {
    const store = await freshBucketStore(server.endpoint);
    const bytes = tinyMlp(3);
    const digest = sha(bytes);
    await store.put(modelArtifactKey(digest), bytes);
    const read = vi.spyOn(store, 'read');
    const cache = dir();
    const paths = await Promise.all(Array.from({ length: 20 }, () => localModelPath(store, digest, cache)));
    expect(new Set(paths)).toEqual(new Set([path.join(cache, `${digest}.onnx`)]));
    expect(read).toHaveBeenCalledTimes(1);
    expect(fs.readFileSync(paths[0]!).equals(Buffer.from(bytes))).toBe(true);
    expect(fs.readdirSync(cache)).toEqual([`${digest}.onnx`]); // no temp file left
    await localModelPath(store, digest, cache);
    expect(read).toHaveBeenCalledTimes(1);
    store.close();
  });

  it('takes an upload by its sha256, which then serves the registered model without a download', async () => {
    const store = await freshBucketStore(server.endpoint);
    const bytes = tinyMlp(4);
    const digest = sha(bytes);
    await store.put('uploads/u1.onnx', bytes);
    const cache = dir();
    const p = await localArtifactPath(store, 'uploads/u1.onnx', digest, cache);
    await store.move('uploads/u1.onnx', modelArtifactKey(digest));
    const read = vi.spyOn(store, 'read');
    expect(await localModelPath(store, digest, cache)).toBe(p);
    expect(read).not.toHaveBeenCalled();
    store.close();
  });

  it('reuses a file another process put in the directory', async () => {
    const store = await freshBucketStore(server.endpoint);
    const cache = dir();
    const digest = 'a'.repeat(64);
    fs.writeFileSync(path.join(cache, `${digest}.onnx`), 'cached');
    const read = vi.spyOn(store, 'read');
    expect(await localModelPath(store, digest, cache)).toBe(path.join(cache, `${digest}.onnx`));
    expect(read).not.toHaveBeenCalled();
    store.close();
  });

  it('refuses content that does not match its sha256, a missing model, and a digest that is not one', async () => {
    const store = await freshBucketStore(server.endpoint);
    const cache = dir();
    const digest = 'b'.repeat(64);
    await store.put(modelArtifactKey(digest), 'not these bytes');
    await expect(localModelPath(store, digest, cache)).rejects.toThrow(/has sha256 .* expected b{64}/);
    expect(fs.readdirSync(cache)).toEqual([]);
    await expect(localModelPath(store, 'c'.repeat(64), cache)).rejects.toMatchObject({ code: 'not_found' });
    await expect(localArtifactPath(store, 'uploads/x.onnx', '../../etc/passwd', cache)).rejects.toMatchObject({ code: 'bad_request' });
    store.close();
  });
});

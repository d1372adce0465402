// The platform on the S3 store (a real S3-protocol server on loopback): the producer streams
// uploads to the bucket, a worker with its own empty data and cache directories (no shared disk)
// checks and scores from it, and nothing is written to the producer's data directory.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { batchKeys } from '../../core/jobs/batch.ts';
import { modelArtifactKey } from '../../core/registry.ts';
import { S3Store } from '../../core/storage/index.ts';
import { directRun, rows, tmpDir } from '../fixtures/models.ts';
import { expectExactOutput } from '../helpers/batch-output.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import { S3_CREDENTIALS, s3Env, startS3Server, type S3Server } from '../unit/core/storage/s3-server.ts';

const F = 6;
const model = buildMlp({ sizes: [F, 12, 3], seed: 23 });
const sha256 = createHash('sha256').update(model).digest('hex');
const bucket = `modelq-${Math.random().toString(36).slice(2, 10)}`;

let s3: S3Server;
let p: TestPlatform;
let bucketView: S3Store;
const workerDirs = { MODELQ_DATA_DIR: tmpDir('modelq-worker-data'), MODELQ_CACHE_DIR: tmpDir('modelq-worker-cache') };

beforeAll(async () => {
  s3 = await startS3Server({ buckets: [bucket] });
  const env = s3Env(s3.endpoint, bucket);
  // The producer runs in this process and finds its credentials the SDK's usual way: the environment.
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY, AWS_EC2_METADATA_DISABLED: 'true' });
  p = await startPlatform({ env });
  await p.addWorker(workerDirs);
  bucketView = new S3Store({ bucket, endpoint: s3.endpoint, credentials: S3_CREDENTIALS });
});
afterAll(async () => {
  await p?.stop();
  bucketView?.close();
  await s3?.stop();
  for (const d of Object.values(workerDirs)) fs.rmSync(d, { recursive: true, force: true });
});

const files = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }).map(String) : []);

describe('platform on the s3 store', () => {
  it('registers a model into the bucket, checked by a worker from its download', async () => {
    const res = await uploadModel(p.url, 'm', model);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ version: 1, sha256, inputs: [{ name: 'input', shape: [-1, F] }] });
    expect(await bucketView.stat(modelArtifactKey(sha256))).toEqual({ bytes: model.length });
    expect(fs.readFileSync(path.join(workerDirs.MODELQ_CACHE_DIR, `${sha256}.onnx`)).equals(Buffer.from(model))).toBe(true);
    const download = Buffer.from(await (await fetch(`${p.url}/v1/models/m/versions/1/onnx`)).arrayBuffer());
    expect(download.equals(Buffer.from(model))).toBe(true);
  });

  it('scores a batch stored in the bucket chunk by chunk as it arrives, in order, with exact values', async () => {
    const n = 3000;
    const x = rows(n, F, 9);
    const body = Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, input: Array.from(x.subarray(i * F, (i + 1) * F)) })).join('\n');
    const res = await fetch(`${p.url}/v1/batches?model=m&chunkRows=700`, { method: 'POST', body });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    const done = await until(
      async () => {
        const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      'the batch to end',
      60_000,
    );
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    await expectExactOutput(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text(), model, x, n, F);
    // The upload was stored in the bucket as it arrived, one object per chunk (0-4 of 700 rows), all its bytes.
    const parts = await Promise.all([0, 1, 2, 3, 4].map((i) => bucketView.stat(batchKeys.inputPart(id, i))));
    expect(parts.reduce((a, st) => a + st!.bytes, 0)).toBe(Buffer.byteLength(body));
    expect(await bucketView.stat(batchKeys.inputPart(id, 5))).toBeNull();
    expect(await bucketView.stat(batchKeys.output(id, 4))).not.toBeNull();
  });

  it('serves online inference from the cached model', async () => {
    const x = rows(2, F, 5);
    const res = await postJson(`${p.url}/v2/models/m/infer`, { inputs: [{ name: 'input', shape: [2, F], datatype: 'FP32', data: Array.from(x) }] });
    const body = await res.json();
    // The worker has no shared disk: it runs the copy its model cache took from the bucket (first test).
    expect(res.status).toBe(200);
    const expected = (await directRun(model, { input: { data: x, dims: [2, F] } })).output!;
    (body.outputs[0].data as number[]).forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));
  });

  it('wrote nothing to the data directories: every artifact is in the bucket', () => {
    expect(files(p.cfg.MODELQ_DATA_DIR)).toEqual([]);
    expect(files(workerDirs.MODELQ_DATA_DIR)).toEqual([]);
  });
});

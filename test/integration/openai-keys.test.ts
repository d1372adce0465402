// OpenAI Files and Batches with API keys (the SDK's apiKey is the Bearer key): scopes, tenants that
// never see each other's files and batches, and retention removing both after MODELQ_BATCH_TTL.
import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAI_JOBS } from '../../core/openai-batch.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const A = 'tenant-a-submit-key-0001';
const B = 'tenant-b-submit-key-0002';
const READ = 'tenant-a-read-only-key-03';
const ADMIN = 'admin-key-0000000000000004';
const KEYS = {
  [A]: { tenant: 'a', scopes: ['submit', 'read'] },
  [B]: { tenant: 'b', scopes: ['submit', 'read'] },
  [READ]: { tenant: 'a', scopes: ['read'] },
  [ADMIN]: { tenant: 'a', scopes: ['admin'] }, // the model is tenant a's (private)
};
const TTL_S = 3;
let p: TestPlatform;
const sdk = (apiKey: string) => new OpenAI({ baseURL: `${p.url}/openai/v1`, apiKey, maxRetries: 0 });
const INFER = '/v2/models/mlp/infer' as OpenAI.Batches.BatchCreateParams['endpoint'];
const line = (id: string) =>
  JSON.stringify({ custom_id: id, method: 'POST', url: INFER, body: { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] } });

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_BATCH_TTL: `${TTL_S}s` } });
  const res = await fetch(`${p.url}/v1/models/mlp/versions`, {
    method: 'POST',
    body: Buffer.from(tinyMlp(2)),
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${ADMIN}` },
  });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

describe('OpenAI API with keys and tenants', () => {
  it('needs a key with the submit scope; tenants do not see each other; retention removes both', async () => {
    const a = sdk(A);
    const file = await a.files.create({ file: await toFile(Buffer.from(`${line('1')}\n${line('2')}\n`), 'in.jsonl'), purpose: 'batch' });
    expect(file.expires_at! - file.created_at).toBe(TTL_S);
    await expect(sdk('not-a-configured-key-999').files.list()).rejects.toMatchObject({ status: 401 });
    await expect(sdk(READ).files.create({ file: await toFile(Buffer.from(line('x')), 'r.jsonl'), purpose: 'batch' })).rejects.toMatchObject({ status: 403 });
    expect((await sdk(READ).files.retrieve(file.id)).id).toBe(file.id); // same tenant, read scope

    const batch = await a.batches.create({ input_file_id: file.id, endpoint: INFER, completion_window: '24h' });
    const b = sdk(B);
    await expect(b.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
    await expect(b.files.content(file.id)).rejects.toMatchObject({ status: 404 });
    await expect(b.batches.retrieve(batch.id)).rejects.toMatchObject({ status: 404 });
    await expect(b.batches.cancel(batch.id)).rejects.toMatchObject({ status: 404 });
    await expect(b.batches.create({ input_file_id: file.id, endpoint: INFER, completion_window: '24h' })).rejects.toMatchObject({ status: 404 });
    expect((await b.batches.list()).data).toEqual([]);
    expect((await b.files.list()).data).toEqual([]);
    // Tenant a's private model is "not found" for tenant b's batch lines too.
    const bFile = await b.files.create({ file: await toFile(Buffer.from(`${line('1')}\n`), 'b.jsonl'), purpose: 'batch' });
    const bBatch = await b.batches.create({ input_file_id: bFile.id, endpoint: INFER, completion_window: '24h' });
    const bDone = await until(async () => {
      const x = await b.batches.retrieve(bBatch.id);
      return x.status === 'failed' ? x : null;
    }, 'tenant b batch failed');
    expect(bDone.errors!.data).toMatchObject([{ code: 'model_not_found', line: 1 }]);

    const done = await until(async () => {
      const x = await a.batches.retrieve(batch.id);
      return x.status === 'completed' ? x : null;
    }, 'batch completed');
    expect(done.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    const outKey = path.join(p.cfg.MODELQ_DATA_DIR, 'openai/files', done.output_file_id!);
    expect(fs.existsSync(outKey)).toBe(true);

    // Past the TTL, the workers' cleanup (normally on a schedule) removes records and bytes.
    await until(() => Date.now() / 1000 > done.completed_at! + TTL_S + 1, 'the TTL to pass', 10_000);
    await p.deps.queues.queue('batch').add(OPENAI_JOBS.cleanup, {});
    await until(
      async () =>
        await a.batches.retrieve(batch.id).then(
          () => false,
          (e) => e.status === 404,
        ),
      'batch removed',
    );
    await until(
      async () =>
        await a.files.retrieve(done.output_file_id!).then(
          () => false,
          (e) => e.status === 404,
        ),
      'output file removed',
    );
    await expect(a.files.retrieve(file.id)).rejects.toMatchObject({ status: 404 });
    expect(fs.existsSync(outKey)).toBe(false);
    expect(fs.existsSync(path.join(p.cfg.MODELQ_DATA_DIR, 'openai/batches', batch.id))).toBe(false);
  });
});

// MODELQ_BATCH_MAX_CHUNKS: a batch is one job per chunk, so a tiny chunkRows on a file (or a Parquet
// file of tiny row groups) is refused with a 400 naming the limit, and leaves nothing behind.
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;

beforeAll(async () => {
  p = await startPlatform({ env: { MODELQ_BATCH_MAX_CHUNKS: '10' } });
  await p.addWorker({ MODELQ_QUEUES: 'model' }); // checks the model upload; no batch is scored here
  expect((await uploadModel(p.url, 'm', tinyMlp())).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const jsonl = (n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ input: [i, 1, 2, 3] })).join('\n') + '\n';
const submit = (body: BodyInit, query: string, type = 'application/x-ndjson') =>
  fetch(`${p.url}/v1/batches?model=m&${query}`, { method: 'POST', body, headers: { 'content-type': type } });

// A JSONL upload is enqueued chunk by chunk as it arrives (producer/batches/upload-stream.ts): a refusal
// midway removes its batch's jobs (keys named after the batch), though the queues' own keys remain.
async function batchKeys(): Promise<string[]> {
  return (await p.redis.keys(`${keyPrefix(p.cfg)}:batch*`)).concat(await p.redis.keys(`${keyPrefix(p.cfg)}:score:*`)).filter((k) => /batch_[0-9a-f]+/.test(k));
}

describe('MODELQ_BATCH_MAX_CHUNKS', () => {
  it('refuses a JSONL batch whose chunkRows makes more chunks than the limit, naming it', async () => {
    const before = await batchKeys();
    // chunkRows=1 on a file of thousands of rows, as in the case (there 100k jobs).
    const res = await submit(jsonl(6000), 'chunkRows=1');
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error.code).toBe('bad_request');
    expect(error.message).toMatch(/more than 10 chunks at chunkRows=1/);
    expect(error.message).toMatch(/MODELQ_BATCH_MAX_CHUNKS/);
    expect(await batchKeys()).toEqual(before);
    expect((await (await fetch(`${p.url}/v1/batches`)).json()).data).toEqual([]);
  });

  it('takes the same rows in as many chunks as the limit allows', async () => {
    const res = await submit(jsonl(50), 'chunkRows=5');
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ chunks: { total: 10 }, requestCounts: { total: 50 } });
  });

  it('refuses a Parquet file with more row groups than the limit', async () => {
    const n = 24;
    const file = parquetWriteBuffer({
      columnData: [{ name: 'input', data: Array.from({ length: n }, (_, i) => [i, 1, 2, 3]) }],
      schema: [
        { name: 'root', num_children: 1 },
        { name: 'input', repetition_type: 'REQUIRED', num_children: 1, converted_type: 'LIST' },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'FLOAT', repetition_type: 'REQUIRED' },
      ],
      rowGroupSize: 2,
    });
    const res = await submit(new Uint8Array(file), 'format=parquet', 'application/octet-stream');
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/12 row groups.*MODELQ_BATCH_MAX_CHUNKS \(10\)/);
  });
});

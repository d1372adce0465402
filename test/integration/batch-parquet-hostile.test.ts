// Hostile Parquet files through the real batch path (issue 25, cases 1, 2, 3 and 6): what the
// footer shows is refused at submit with a 400 naming the limit; what only the pages show fails
// the batch with the reason, at once (no retries), and the worker goes on scoring the next batch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { hostileFiles, smallFile, withEmptyStructs } from '../helpers/parquet-hostile.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;

beforeAll(async () => {
  p = await startPlatform({
    workers: 1,
    env: { MODELQ_BATCH_MAX_ROWS: '50', MODELQ_PARQUET_MAX_FOOTER_BYTES: String(4 * 1024 * 1024), MODELQ_PARQUET_FOOTER_TIMEOUT: '0.3s' },
  });
  // One feature: the files' `x` column (their `id` is echoed).
  expect((await uploadModel(p.url, 'one', buildMlp({ sizes: [1, 4, 2], seed: 3 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const submit = (body: Uint8Array) =>
  fetch(`${p.url}/v1/batches?model=one`, { method: 'POST', body: Buffer.from(body), headers: { 'content-type': 'application/vnd.apache.parquet' } });

async function ended(id: string) {
  return until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      // A failed batch's reason is written just after its status.
      return ['completed', 'cancelled'].includes(v.status) || (v.status === 'failed' && v.error) ? v : null;
    },
    `batch ${id} to end`,
    120_000,
  );
}

async function refused(file: Uint8Array, why: RegExp) {
  const res = await submit(file);
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(400);
  expect(body.error.message).toMatch(why);
}

describe('hostile Parquet batches', () => {
  it('pages that lie fail their batch with the reason (cases 1 and 6), and the worker scores the next batch', async () => {
    const { spin, hugePage: huge } = hostileFiles();
    for (const [file, why] of [
      [spin, /chunk 0 failed: .*a run header of levels or indices ends mid-varint/],
      [huge, /chunk 0 failed: .*num_values=100000000; the limit is MODELQ_PARQUET_MAX_PAGE_VALUES/],
    ] as const) {
      const res = await submit(file);
      expect(res.status).toBe(202);
      const v = await ended((await res.json()).id);
      expect(v.status).toBe('failed');
      expect(v.error).toMatch(why);
    }
    const good = await submit(smallFile());
    expect(good.status).toBe(202);
    expect(await ended((await good.json()).id)).toMatchObject({ status: 'completed', requestCounts: { total: 5, completed: 5, failed: 0 } });
    expect(p.workers[0]!.child.exitCode).toBeNull();
  });

  it('case 2: a footer declaring 3e8 rows is a 400 naming the limit; MODELQ_BATCH_MAX_ROWS holds for Parquet as for JSONL', async () => {
    await refused(hostileFiles().hugeRows, /row group 0 declares 300000000 rows; the limit is MODELQ_PARQUET_MAX_GROUP_ROWS/);
    await refused(smallFile(100), /the file has 100 rows; the limit is MODELQ_BATCH_MAX_ROWS \(50\)/);
  });

  it('case 3: a footer of millions of empty structs is refused past its size, or when parsing it (off the event loop) overruns its time', async () => {
    await refused(withEmptyStructs(smallFile(), 6_000_000), /the limit is MODELQ_PARQUET_MAX_FOOTER_BYTES/);
    // Within the size limit: parsed in a thread, which is ended at MODELQ_PARQUET_FOOTER_TIMEOUT.
    const pending = submit(withEmptyStructs(smallFile(), 3_500_000));
    // The event loop keeps answering meanwhile.
    expect((await fetch(`${p.url}/v2/health/live`)).status).toBe(200);
    const res = await pending;
    expect(res.status).toBe(400);
    expect((await res.json()).error.message).toMatch(/took longer than MODELQ_PARQUET_FOOTER_TIMEOUT \(300 ms\)/);
  });
});

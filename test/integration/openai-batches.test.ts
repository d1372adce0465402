// OpenAI-compatible Files and Batches driven by the official `openai` SDK, unmodified: upload, a batch
// on /v2/models/{name}/infer polled to completed with every output line equal to a direct onnxruntime
// run, the error file's shape, /v1/embeddings, list pagination, cancel, an expired window, and
// validation failures naming the lines.
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directRun, rows, tinyMlp } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let client: OpenAI;
const mlp = tinyMlp(6);
const INFER = '/v2/models/mlp/infer' as OpenAI.Batches.BatchCreateParams['endpoint'];
const EMBED = '/v1/embeddings' as OpenAI.Batches.BatchCreateParams['endpoint'];

// Batches that must be cancelled or expire before any worker runs, created while none is up.
let cancelled: OpenAI.Batches.Batch;
let expiring: OpenAI.Batches.Batch;

const jsonl = (lines: unknown[]) => lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
const upload = async (lines: unknown[], name = 'input.jsonl') => client.files.create({ file: await toFile(Buffer.from(jsonl(lines)), name), purpose: 'batch' });
const inferLine = (id: string, x: number[], url: string = INFER) => ({
  custom_id: id,
  method: 'POST',
  url,
  body: { inputs: [{ name: 'input', shape: [x.length / 4, 4], datatype: 'FP32', data: x }] },
});
const settled = (id: string, statuses = ['completed', 'failed', 'expired', 'cancelled']) =>
  until(
    async () => {
      const b = await client.batches.retrieve(id);
      return statuses.includes(b.status) ? b : null;
    },
    `batch ${id} settled`,
    60_000,
  );
const fileLines = async (id: string) =>
  (await (await client.files.content(id)).text())
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

beforeAll(async () => {
  p = await startPlatform({ workers: 0 });
  client = new OpenAI({ baseURL: `${p.url}/openai/v1`, apiKey: 'unused-when-open' });
  // A worker that only checks model uploads: batches wait until the first test adds a full one.
  await p.addWorker({ MODELQ_QUEUES: 'model' });
  expect((await uploadModel(p.url, 'mlp', mlp)).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

describe('OpenAI Files and Batches (official SDK)', () => {
  it('accepts batches while no worker runs; a cancel before validation ends cancelled, a 1s window ends expired', async () => {
    const f = await upload([inferLine('a', [1, 2, 3, 4]), inferLine('b', [4, 3, 2, 1])]);
    cancelled = await client.batches.create({ input_file_id: f.id, endpoint: INFER, completion_window: '24h' });
    expect(cancelled).toMatchObject({
      object: 'batch',
      status: 'validating',
      endpoint: INFER,
      input_file_id: f.id,
      completion_window: '24h',
      output_file_id: null,
    });
    expect(cancelled.expires_at! - cancelled.created_at).toBe(24 * 3600);
    expect((await client.batches.cancel(cancelled.id)).status).toBe('cancelling');
    expiring = await client.batches.create({ input_file_id: f.id, endpoint: INFER, completion_window: '1s' as '24h' }); // a modelq extension; the SDK's type knows only 24h
    await until(() => Date.now() / 1000 > expiring.expires_at! + 1, 'the 1 s window to pass', 10_000);
    await p.addWorker();
    const c = await settled(cancelled.id);
    expect(c).toMatchObject({ status: 'cancelled', output_file_id: null });
    expect(c.cancelled_at).toBeGreaterThanOrEqual(c.cancelling_at!);
    const e = await settled(expiring.id);
    expect(e).toMatchObject({ status: 'expired', request_counts: { total: 2, completed: 0, failed: 2 }, output_file_id: null });
    expect(e.expired_at).toBeGreaterThanOrEqual(e.expires_at!);
    const errors = await fileLines(e.error_file_id!);
    expect(errors.map((l) => l.custom_id)).toEqual(['a', 'b']);
    for (const l of errors) {
      expect(Object.keys(l).sort()).toEqual(['custom_id', 'error', 'id', 'response']);
      expect(l).toMatchObject({ id: expect.stringMatching(/^batch_req_/), response: null, error: { code: 'batch_expired', message: expect.any(String) } });
    }
  });

  it('runs an inference-protocol batch to completed: every output line equals a direct run, bad lines in the error file', async () => {
    const n = 2100; // three chunks of 1000 lines
    const x = rows(n, 4, 3);
    const lines: unknown[] = Array.from({ length: n }, (_, i) => inferLine(`req-${i}`, Array.from(x.subarray(i * 4, i * 4 + 4))));
    lines.splice(1500, 0, {
      custom_id: 'bad-shape',
      method: 'POST',
      url: INFER,
      body: { inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] },
    });
    const f = await upload(lines, 'rows.jsonl');
    expect(f).toMatchObject({ object: 'file', purpose: 'batch', filename: 'rows.jsonl', bytes: Buffer.byteLength(jsonl(lines)) });
    expect((await client.files.retrieve(f.id)).id).toBe(f.id);
    const t0 = Math.floor(Date.now() / 1000);
    const created = await client.batches.create({ input_file_id: f.id, endpoint: INFER, completion_window: '24h', metadata: { team: 'ml' } });
    const b = await settled(created.id);
    expect(b).toMatchObject({ status: 'completed', request_counts: { total: n + 1, completed: n, failed: 1 }, metadata: { team: 'ml' }, errors: null });
    for (const k of ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at'] as const) {
      expect(Number.isInteger(b[k]), k).toBe(true);
      expect(b[k]!, k).toBeGreaterThanOrEqual(t0 - 1);
      expect(b[k]!, k).toBeLessThan(t0 + 600);
    }
    const expected = (await directRun(mlp, { input: { data: x, dims: [n, 4] } })).output!;
    const out = await fileLines(b.output_file_id!);
    expect(out.map((l) => l.custom_id)).toEqual(Array.from({ length: n }, (_, i) => `req-${i}`)); // input order
    out.forEach((l, i) => {
      expect(l.error).toBeNull();
      expect(l.response.status_code).toBe(200);
      expect(l.response.body).toMatchObject({ model_name: 'mlp', model_version: '1', outputs: [{ name: 'output', datatype: 'FP32', shape: [1, 3] }] });
      expect(l.response.body.outputs[0].data).toEqual(Array.from(expected.subarray(i * 3, i * 3 + 3)));
    });
    const [err] = await fileLines(b.error_file_id!);
    expect(err).toMatchObject({
      custom_id: 'bad-shape',
      error: null,
      response: {
        status_code: 400,
        body: { error: { message: expect.stringMatching(/input "input": shape \[1,5\] does not match/), type: 'invalid_request_error' } },
      },
    });
    const outFile = await client.files.retrieve(b.output_file_id!);
    expect(outFile).toMatchObject({ purpose: 'batch_output', object: 'file' });
  });

  it('runs /v1/embeddings lines: a row, a list of rows', async () => {
    const x = rows(3, 4, 8);
    const f = await upload([
      { custom_id: 'one', method: 'POST', url: EMBED, body: { model: 'mlp@1', input: Array.from(x.subarray(0, 4)) } },
      { custom_id: 'two', method: 'POST', url: EMBED, body: { model: 'mlp', input: [Array.from(x.subarray(4, 8)), Array.from(x.subarray(8, 12))] } },
    ]);
    const b = await settled((await client.batches.create({ input_file_id: f.id, endpoint: EMBED, completion_window: '24h' })).id);
    expect(b).toMatchObject({ status: 'completed', request_counts: { total: 2, completed: 2, failed: 0 }, error_file_id: null });
    const expected = (await directRun(mlp, { input: { data: x, dims: [3, 4] } })).output!;
    const [one, two] = await fileLines(b.output_file_id!);
    expect(one.response.body).toMatchObject({ object: 'list', model: 'mlp@1', data: [{ object: 'embedding', index: 0 }] });
    expect(one.response.body.data[0].embedding).toEqual(Array.from(expected.subarray(0, 3)));
    expect(two.response.body.data.map((d: { embedding: number[] }) => d.embedding)).toEqual([
      Array.from(expected.subarray(3, 6)),
      Array.from(expected.subarray(6, 9)),
    ]);
  });

  it('fails validation with errors naming the lines: duplicate custom_id, bad url, unknown model', async () => {
    const f = await upload([inferLine('x', [1, 2, 3, 4]), inferLine('x', [1, 2, 3, 4]), inferLine('y', [1, 2, 3, 4], '/v2/models/other/infer')]);
    const b = await settled((await client.batches.create({ input_file_id: f.id, endpoint: INFER, completion_window: '24h' })).id);
    expect(b.status).toBe('failed');
    expect(Number.isInteger(b.failed_at)).toBe(true);
    expect(b.errors!.data!.map((e) => [e.code, e.line])).toEqual([
      ['duplicate_custom_id', 2],
      ['invalid_url', 3],
    ]);
    const g = await upload([{ custom_id: 'e', method: 'POST', url: EMBED, body: { model: 'nope', input: [1, 2, 3, 4] } }]);
    const c = await settled((await client.batches.create({ input_file_id: g.id, endpoint: EMBED, completion_window: '24h' })).id);
    expect(c).toMatchObject({ status: 'failed', errors: { data: [{ code: 'model_not_found', line: 1 }] } });
    // Refused at once: an endpoint modelq does not serve, a window past 24h, a missing file.
    await expect(client.batches.create({ input_file_id: f.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({
      status: 400,
    });
    await expect(client.batches.create({ input_file_id: f.id, endpoint: INFER, completion_window: '48h' as '24h' })).rejects.toMatchObject({ status: 400 });
    await expect(client.batches.create({ input_file_id: 'file-000000000000000000000000', endpoint: INFER, completion_window: '24h' })).rejects.toMatchObject({
      status: 404,
    });
  });

  it('pages lists with after/limit until has_more is false; deletes files', async () => {
    const all: string[] = [];
    let page = await client.batches.list({ limit: 2 });
    for (;;) {
      all.push(...page.data.map((b) => b.id));
      if (!page.hasNextPage()) break;
      expect(page.data).toHaveLength(2);
      page = await page.getNextPage();
    }
    expect(all.length).toBeGreaterThanOrEqual(6);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toContain(cancelled.id);
    const autoPaged: string[] = [];
    for await (const b of client.batches.list({ limit: 1 })) autoPaged.push(b.id);
    expect(autoPaged).toEqual(all);

    const outputs = await client.files.list({ purpose: 'batch_output' });
    expect(outputs.data.length).toBeGreaterThanOrEqual(2);
    expect(outputs.data.every((f) => f.purpose === 'batch_output')).toBe(true);
    const f = await upload([inferLine('z', [1, 2, 3, 4])]);
    expect(await client.files.delete(f.id)).toMatchObject({ id: f.id, deleted: true });
    await expect(client.files.retrieve(f.id)).rejects.toMatchObject({ status: 404 });
  });

  it("answers a truncated multipart upload 400 in OpenAI's error shape (and the producer lives on)", async () => {
    const body =
      '--x\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n--x\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n{"custom_id"';
    const res = await fetch(`${p.url}/openai/v1/files`, { method: 'POST', body, headers: { 'content-type': 'multipart/form-data; boundary=x' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { message: expect.stringMatching(/multipart/), type: 'invalid_request_error' } });
    await expect(client.files.create({ file: await toFile(Buffer.from('{}\n'), 'x.jsonl'), purpose: 'fine-tune' })).rejects.toMatchObject({ status: 400 });
    expect((await client.files.list({ purpose: 'batch' })).data.every((f) => f.purpose === 'batch')).toBe(true);
  });
});

// What OpenAI batches gain by running as native batches: their rows are the native batch's rows
// (listed under /v1/batches with metadata.openai_batch, counted by row, finalized by the native
// finalizer) and are drawn for drift like any batch's, so an uploaded version gets its reference
// from an OpenAI batch. A line of several rows is several native rows, answered as one line.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rows, tinyMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const REFERENCE_ROWS = 60;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_DRIFT_SAMPLE: '1', MODELQ_DRIFT_REFERENCE_ROWS: String(REFERENCE_ROWS) } });
  expect((await uploadModel(p.url, 'mlp', tinyMlp(4))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

describe('OpenAI batches on native batches', () => {
  it('scores its rows in a native batch, draws them for drift, answers a 3-row line as one line', async () => {
    const x = rows(100, 4, 9);
    const line = (id: string, n: number, at: number) => ({
      custom_id: id,
      method: 'POST',
      url: '/v2/models/mlp/infer',
      body: { inputs: [{ name: 'input', shape: [n, 4], datatype: 'FP32', data: Array.from(x.subarray(at * 4, (at + n) * 4)) }] },
    });
    const lines = [line('three', 3, 0), ...Array.from({ length: 97 }, (_, i) => line(`r${i}`, 1, 3 + i))];
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([lines.map((l) => JSON.stringify(l)).join('\n')]), 'in.jsonl');
    const file = await (await fetch(`${p.url}/openai/v1/files`, { method: 'POST', body: form })).json();
    const created = await (
      await postJson(`${p.url}/openai/v1/batches`, { input_file_id: file.id, endpoint: '/v2/models/mlp/infer', completion_window: '24h' })
    ).json();
    const done = await until(async () => {
      const b = await (await fetch(`${p.url}/openai/v1/batches/${created.id}`)).json();
      return ['completed', 'failed', 'expired', 'cancelled'].includes(b.status) ? b : null;
    }, 'the OpenAI batch to end');
    expect(done).toMatchObject({ status: 'completed', request_counts: { total: 98, completed: 98, failed: 0 } });

    // The native batch: 100 rows, its metadata naming the OpenAI batch.
    const list = await (await fetch(`${p.url}/v1/batches`)).json();
    const native = list.data.find((b: { metadata?: { openai_batch?: string } }) => b.metadata?.openai_batch === created.id);
    expect(native).toMatchObject({ status: 'completed', model: { name: 'mlp', version: 1 }, requestCounts: { total: 100, completed: 100, failed: 0 } });
    // Its native rows carry the custom_ids; the OpenAI output has one line for the three rows.
    const nativeOut = (await (await fetch(`${p.url}/v1/batches/${native.id}/output`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(nativeOut.slice(0, 4).map((r) => [r.row, r.id])).toEqual([
      [0, 'three'],
      [1, 'three'],
      [2, 'three'],
      [3, 'r0'],
    ]);
    const out = (await (await fetch(`${p.url}/openai/v1/files/${done.output_file_id}/content`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out).toHaveLength(98);
    expect(out[0].response.body.outputs[0]).toMatchObject({ name: 'output', shape: [3, 3] });
    expect(out[0].response.body.outputs[0].data).toEqual([0, 1, 2].flatMap((r) => nativeOut[r].outputs.output));

    // Drawn for drift as native batches are: the uploaded version's reference comes from these rows.
    const v = await until(async () => {
      const r = await (await fetch(`${p.url}/v1/models/mlp/versions/1`)).json();
      return r.explain?.reference ? r : null;
    }, 'a reference from the OpenAI batch rows');
    expect(v.explain.reference).toMatchObject({ rows: REFERENCE_ROWS, features: 4 });
  });
});

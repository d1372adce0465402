// MODELQ_OPENAI_MAX_LINE_BYTES on the real flow: an OpenAI batch whose input has a 16 MB line fails
// validation with an error naming the line and the limit, instead of a worker parsing it for seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_OPENAI_MAX_LINE_BYTES: String(1024 * 1024) } });
});
afterAll(async () => {
  await p?.stop();
});

describe('OpenAI input line limit', () => {
  it('a 16 MB line fails the batch naming MODELQ_OPENAI_MAX_LINE_BYTES', async () => {
    const ok = JSON.stringify({ custom_id: 'a', method: 'POST', url: '/v2/models/m/infer', body: { inputs: [] } });
    const long = JSON.stringify({ custom_id: 'b', method: 'POST', url: '/v2/models/m/infer', body: { pad: 'x'.repeat(16 * 1024 * 1024) } });
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([`${ok}\n${long}\n`]), 'in.jsonl');
    const file = await (await fetch(`${p.url}/openai/v1/files`, { method: 'POST', body: form })).json();
    const created = await fetch(`${p.url}/openai/v1/batches`, {
      method: 'POST',
      body: JSON.stringify({ input_file_id: file.id, endpoint: '/v2/models/m/infer', completion_window: '24h' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status).toBe(200);
    const { id } = await created.json();
    const b = await until(async () => {
      const v = await (await fetch(`${p.url}/openai/v1/batches/${id}`)).json();
      return v.status === 'validating' ? null : v;
    }, 'validation to end');
    expect(b.status).toBe('failed');
    // (line 1 names a model that is not there: its own error beside this one)
    expect(b.errors.data).toContainEqual(
      expect.objectContaining({ code: 'line_too_long', line: 2, message: 'line 2 is longer than 1048576 bytes (MODELQ_OPENAI_MAX_LINE_BYTES)' }),
    );
  });
});

// Bodies as curl users send them by mistake get an answer that says what to change: JSONL whose
// newlines `curl -d` stripped (a 400 naming --data-binary), a CSV separated by ";" (a 400 saying
// `delimiter=;`, which then scores it as the comma file), and a JSON body sent with no Content-Type at all (accepted, since it is JSON).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'hints', buildMlp({ sizes: [4, 8, 2], seed: 5 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

async function waitDone(id: string) {
  return until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    60_000,
  );
}

const post = (path: string, body: string, headers: Record<string, string> = {}) => fetch(`${p.url}${path}`, { method: 'POST', body, headers });

describe('hints for bodies sent the wrong way', () => {
  it('refuses JSONL whose newlines were stripped (curl -d), naming --data-binary; the same rows with newlines are accepted', async () => {
    const rows = ['{"id":"a","input":[1,2,3,4]}', '{"id":"b","input":[0,1,0,1]}'];
    const flat = await post('/v1/batches?model=hints', rows.join(''), { 'content-type': 'application/x-www-form-urlencoded' });
    expect(flat.status).toBe(400);
    const err = (await flat.json()).error;
    expect(err.code).toBe('bad_request');
    expect(err.message).toMatch(/`}\{`/);
    expect(err.message).toMatch(/--data-binary/);
    // Declared JSONL: the answer names the declaration and gives the same hint.
    const declared = await post('/v1/batches?model=hints&format=jsonl', rows.join(' '));
    expect(declared.status).toBe(400);
    expect((await declared.json()).error.message).toMatch(/format=jsonl.*--data-binary/);
    // A brace inside a string is not a second object.
    const ok = await post('/v1/batches?model=hints', rows.map((r) => r.replace('"a"', '"a}{b"')).join('\n') + '\n');
    expect(ok.status, await ok.clone().text()).toBe(202);
  });

  it('hints delimiter=; for a CSV separated by ";", and scores it with delimiter=; (and tab, |) as the comma one', async () => {
    const rows = (sep: string) => ['id,f1,f2,f3,f4', 'a,1,2,3,4', 'b,"0.5",0,1,2'].map((l) => l.replaceAll(',', sep)).join('\n') + '\n';
    const semi = await post('/v1/batches?model=hints', rows(';'), { 'content-type': 'text/csv' });
    expect(semi.status).toBe(400);
    const err = (await semi.json()).error;
    expect(err.code).toBe('bad_request');
    expect(err.message).toMatch(/separated by ";", not commas: send delimiter=;/);
    const tabs = await post('/v1/batches?model=hints', rows('\t'), { 'content-type': 'text/csv' });
    expect(tabs.status).toBe(400);
    expect((await tabs.json()).error.message).toMatch(/separated by tabs.*delimiter=tab/);

    const outputs: string[] = [];
    for (const [sep, param] of [
      [',', ''],
      [';', '&delimiter=;'],
      ['\t', '&delimiter=tab'],
      ['|', '&delimiter=|'],
    ] as const) {
      const res = await post(`/v1/batches?model=hints${param}`, rows(sep), { 'content-type': 'text/csv' });
      expect(res.status, await res.clone().text()).toBe(202);
      const { id } = await res.json();
      const done = await waitDone(id);
      expect(done.status, JSON.stringify(done)).toBe('completed');
      expect(done.requestCounts).toMatchObject({ total: 2, completed: 2, failed: 0 });
      outputs.push(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text());
    }
    expect(outputs[0]!.trim().split('\n')).toHaveLength(2);
    for (const o of outputs.slice(1)) expect(o).toBe(outputs[0]);
  });

  it('validates delimiter: one of , ; | tab, and only for CSV', async () => {
    const bad = await post('/v1/batches?model=hints&delimiter=x', 'id,f1,f2,f3,f4\na,1,2,3,4\n');
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toMatch(/delimiter/);
    const jsonl = await post('/v1/batches?model=hints&delimiter=;', '{"input":[1,2,3,4]}\n');
    expect(jsonl.status).toBe(400);
    expect((await jsonl.json()).error.message).toMatch(/delimiter=; is for CSV files; this file is JSONL/);
  });

  it('reads a JSON body with no Content-Type as JSON; a body with none that is not JSON is still a 415', async () => {
    const body = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    // fetch adds text/plain for a string body: a Uint8Array body goes with no content type at all.
    const bare = await fetch(`${p.url}/v2/models/hints/infer`, { method: 'POST', body: new TextEncoder().encode(body) });
    expect(bare.status, await bare.clone().text()).toBe(200);
    expect((await bare.json()).outputs[0].shape).toEqual([1, 2]);
    const alias = await fetch(`${p.url}/v1/models/hints/aliases/bare`, { method: 'PUT', body: new TextEncoder().encode('{"version":1}') });
    expect(alias.status, await alias.clone().text()).toBeLessThan(300);
    const notJson = await fetch(`${p.url}/v2/models/hints/infer`, { method: 'POST', body: new TextEncoder().encode('input=1,2,3,4') });
    expect(notJson.status).toBe(415);
    expect((await notJson.json()).error).toMatch(/Content-Type must be application\/json, got "none"/);
    // A wrong type stays a 415 even when the body is JSON: only a missing one is forgiven.
    const typed = await post('/v2/models/hints/infer', body, { 'content-type': 'text/plain' });
    expect(typed.status).toBe(415);
  });
});

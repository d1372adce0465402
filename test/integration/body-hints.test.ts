// Bodies as curl users send them by mistake get an answer that says what to change: JSONL whose
// newlines `curl -d` stripped (a 400 naming --data-binary), a CSV separated by ";" (a 400 naming
// the separator), and a JSON body sent with no Content-Type at all (accepted, since it is JSON).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'hints', buildMlp({ sizes: [4, 8, 2], seed: 5 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

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

  it('refuses a CSV separated by ";" naming the separator; the comma one is accepted', async () => {
    const semi = await post('/v1/batches?model=hints', 'id;f1;f2;f3;f4\na;1;2;3;4\n', { 'content-type': 'text/csv' });
    expect(semi.status).toBe(400);
    const err = (await semi.json()).error;
    expect(err.message).toMatch(/separated by ";", not commas/);
    const tabs = await post('/v1/batches?model=hints', 'id\tf1\tf2\tf3\tf4\na\t1\t2\t3\t4\n', { 'content-type': 'text/csv' });
    expect(tabs.status).toBe(400);
    expect((await tabs.json()).error.message).toMatch(/separated by tabs/);
    const comma = await post('/v1/batches?model=hints', 'id,f1,f2,f3,f4\na,1,2,3,4\n', { 'content-type': 'text/csv' });
    expect(comma.status, await comma.clone().text()).toBe(202);
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

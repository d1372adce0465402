// The inference route reads plain JSON bodies itself (the hot path) and leaves every other body to
// the generic JSON parser: both give the same answers and the same errors. Also: packed tensors of
// several datatypes come back as the protocol's JSON, and an old-style job (JSON data) still works.
import http from 'node:http';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directRun, gatherModel, rows, tinyMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const x = rows(1, 4, 3);
const body = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: Array.from(x) }] };
let expected: number[];

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_MAX_REQUEST_MB: '1' } });
  expect((await uploadModel(p.url, 'tiny', tinyMlp())).status).toBe(201);
  expected = Array.from((await directRun(tinyMlp(), { input: { data: x, dims: [1, 4] } })).output!);
});
afterAll(async () => {
  await p?.stop();
});

/** A raw request, so framing (chunked, no length) and headers are exactly as written. */
function raw(headers: Record<string, string>, chunks: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${p.url}/v2/models/tiny/infer`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

const close = (got: number[]) => got.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));

describe('inference request bodies', () => {
  it('answers plain, charset-labelled, BOM-prefixed, chunked and gzip bodies alike', async () => {
    const json = Buffer.from(JSON.stringify(body));
    const answers = [
      await raw({ 'content-type': 'application/json', 'content-length': String(json.length) }, [json]),
      await raw({ 'content-type': 'application/json; charset=utf-8', 'content-length': String(json.length + 3) }, [Buffer.from([0xef, 0xbb, 0xbf]), json]),
      await raw({ 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, [json.subarray(0, 10), json.subarray(10)]),
      await raw({ 'content-type': 'application/json', 'content-encoding': 'gzip' }, [zlib.gzipSync(json)]),
    ];
    for (const a of answers) {
      expect(a.status, a.body).toBe(200);
      close(JSON.parse(a.body).outputs[0].data);
    }
    expect(answers[0]!.body).toMatch(/^\{"model_name":"tiny","model_version":"1","outputs":\[\{"name":"output","datatype":"FP32","shape":\[1,3\],"data":\[/);
    // The first two take the node:http fast path, the last two express's route: the same bytes.
    for (const a of answers) expect(a.body).toBe(answers[0]!.body);
  });

  it('counts fast-path requests in /metrics under the routes express names, and answers its errors the same way', async () => {
    const count = async (route: string, status: number) => {
      const text = await (await fetch(`${p.url}/metrics`)).text();
      const m = new RegExp(
        `^modelq_http_requests_total\\{method="POST",route="${route.replace(/[/:]/g, (c) => `\\${c}`)}",status="${status}"\\} (\\d+)$`,
        'm',
      ).exec(text);
      return m ? Number(m[1]) : 0;
    };
    const r1 = '/v2/models/:name/infer';
    const r2 = '/v2/models/:name/versions/:version/infer';
    const before = [await count(r1, 200), await count(r2, 200), await count(r1, 400), await count(r1, 404)];
    expect((await postJson(`${p.url}/v2/models/tiny/infer`, body)).status).toBe(200);
    expect((await postJson(`${p.url}/v2/models/tiny/versions/1/infer`, body)).status).toBe(200);
    const wrong = await postJson(`${p.url}/v2/models/tiny/infer`, { inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: [1, 2, 3, 4, 5] }] });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toEqual({ error: expect.stringMatching(/shape \[1,5\]/) });
    const missing = await postJson(`${p.url}/v2/models/nope/infer`, body);
    expect(missing.status).toBe(404);
    expect(Object.keys(await missing.json())).toEqual(['error']);
    expect([await count(r1, 200), await count(r2, 200), await count(r1, 400), await count(r1, 404)]).toEqual([
      before[0]! + 1,
      before[1]! + 1,
      before[2]! + 1,
      before[3]! + 1,
    ]);
  });

  it('answers bad bodies with the same errors as before', async () => {
    const bad = await postJson(`${p.url}/v2/models/tiny/infer`, '{"inputs": [');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatch(/^body is not valid JSON: /);
    const big = await postJson(`${p.url}/v2/models/tiny/infer`, JSON.stringify({ ...body, pad: 'x'.repeat(1_100_000) }));
    expect(big.status).toBe(413);
    expect((await big.json()).error).toMatch(/body too large/);
    const type = await fetch(`${p.url}/v2/models/tiny/infer`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
    expect(type.status).toBe(415);
    const empty = await raw({ 'content-type': 'application/json', 'content-length': '0' }, []);
    expect(empty.status).toBe(400);
    expect(JSON.parse(empty.body).error).toMatch(/^request/);
  });

  it('returns outputs of other datatypes as the protocol JSON, and serves old-style jobs', async () => {
    expect((await uploadModel(p.url, 'gather', gatherModel())).status).toBe(201);
    const res = await postJson(`${p.url}/v2/models/gather/infer`, { inputs: [{ name: 'idx', shape: [2, 1], datatype: 'INT64', data: [1, 2] }] });
    expect(res.status).toBe(200);
    const out = (await res.json()).outputs[0];
    expect(out).toMatchObject({ name: 'emb', datatype: 'FP32', shape: [2, 1, 4] });

    // A job as an older producer wrote it: JSON data, no `packed`, no batching settings.
    const model = await p.deps.registry.getVersion('tiny', 1);
    const job = await p.deps.queues.queue('infer').add('infer', {
      model: { name: 'tiny', version: 1, sha256: model.sha256 },
      requests: [{ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: Array.from(x) }] }],
    });
    const result = await job.waitUntilFinished(p.deps.queues.queueEvents('infer'), 20_000);
    close(result.responses[0].outputs[0].data);
  });
});

// The backbone end to end on the real Redis and real onnxruntime: register, infer through the
// protocol, reject bad input, and two worker processes sharing the queue.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWorkerStats } from '../../core/stats.ts';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows, tinyMlp, twoInputModel, twoOutputModel } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const model = buildMlp({ sizes: [16, 32, 32, 5], seed: 3 });

beforeAll(async () => {
  p = await startPlatform({ workers: 2 });
});
afterAll(async () => {
  await p?.stop();
});

const infer = (name: string, body: unknown, version?: number) => postJson(`${p.url}/v2/models/${name}${version ? `/versions/${version}` : ''}/infer`, body);

describe('model registry', () => {
  it('registers a model and reads its signature from the graph', async () => {
    const res = await uploadModel(p.url, 'mlp', model);
    expect(res.status).toBe(201);
    const v = await res.json();
    expect(v).toMatchObject({
      name: 'mlp',
      version: 1,
      bytes: model.length,
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 16] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 5] }],
    });
    expect(v.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(v.createdAt)).not.toBeNaN();
  });

  it('returns the existing version for identical bytes', async () => {
    const again = await uploadModel(p.url, 'mlp', model);
    expect(again.status).toBe(200);
    expect((await again.json()).version).toBe(1);
    const m = await (await fetch(`${p.url}/v1/models/mlp`)).json();
    expect(m.versions).toHaveLength(1);
    expect(m.aliases).toEqual({ latest: 1 });
  });

  it('counts versions from 1 and moves latest', async () => {
    const res = await uploadModel(p.url, 'mlp', buildMlp({ sizes: [16, 32, 32, 5], seed: 4 }));
    expect(res.status).toBe(201);
    expect((await res.json()).version).toBe(2);
    const m = await (await fetch(`${p.url}/v1/models/mlp`)).json();
    expect(m.aliases.latest).toBe(2);
    expect(m.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
  });

  it('rejects corrupt and truncated files with 422 and leaves the registry unchanged', async () => {
    const before = await (await fetch(`${p.url}/v1/models/mlp`)).json();
    const filesBefore = fs.readdirSync(path.join(p.cfg.MODELQ_DATA_DIR, 'models/sha256')).sort();
    for (const bad of [Buffer.from('this is not onnx'), model.subarray(0, Math.floor(model.length / 2))]) {
      const res = await uploadModel(p.url, 'mlp', bad);
      expect(res.status).toBe(422);
      const body = await res.json();
      expect(body.error.code).toBe('invalid_model');
      expect(body.error.message).toMatch(/does not load in onnxruntime: .+/);
    }
    const broken = await uploadModel(p.url, 'brand-new', Buffer.from([0x08, 0x07, 0x12]));
    expect(broken.status).toBe(422);
    expect((await fetch(`${p.url}/v1/models/brand-new`)).status).toBe(404);
    expect(await (await fetch(`${p.url}/v1/models/mlp`)).json()).toEqual(before);
    expect(fs.readdirSync(path.join(p.cfg.MODELQ_DATA_DIR, 'models/sha256')).sort()).toEqual(filesBefore);
    expect(fs.readdirSync(path.join(p.cfg.MODELQ_DATA_DIR, 'uploads'))).toEqual([]);
  });

  it('rejects bad names and empty bodies with 400', async () => {
    for (const name of ['Upper', '-dash', 'a'.repeat(65), 'sp%20ace']) {
      const res = await uploadModel(p.url, name, model);
      expect(res.status, name).toBe(400);
      expect((await res.json()).error.code).toBe('bad_request');
    }
    const empty = await uploadModel(p.url, 'empty', new Uint8Array());
    expect(empty.status).toBe(400);
    expect((await empty.json()).error.message).toMatch(/empty/);
  });

  it('manages aliases and resolves name@alias and name@N', async () => {
    const put = await fetch(`${p.url}/v1/models/mlp/aliases/prod`, {
      method: 'PUT',
      body: JSON.stringify({ version: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(put.status).toBe(200);
    expect((await (await fetch(`${p.url}/v1/models/mlp`)).json()).aliases).toEqual({ latest: 2, prod: 1 });
    const bad = await fetch(`${p.url}/v1/models/mlp/aliases/prod`, {
      method: 'PUT',
      body: JSON.stringify({ version: 9 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(404);
    const meta = await (await fetch(`${p.url}/v2/models/mlp/versions/prod`)).json();
    expect(meta.properties.version).toBe('1');
    expect((await fetch(`${p.url}/v1/models/mlp/aliases/prod`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${p.url}/v1/models/mlp/aliases/prod`, { method: 'DELETE' })).status).toBe(404);
    expect((await fetch(`${p.url}/v1/models/mlp/aliases/latest`, { method: 'DELETE' })).status).toBe(409);
  });

  it('downloads the exact bytes of a version', async () => {
    const res = await fetch(`${p.url}/v1/models/mlp/versions/1/onnx`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(model))).toBe(true);
    expect((await fetch(`${p.url}/v1/models/mlp/versions/7/onnx`)).status).toBe(404);
  });
});

describe('online inference (Open Inference Protocol v2)', () => {
  it('answers like a direct onnxruntime run, for flat and nested data', async () => {
    const x = rows(3, 16, 11);
    const expected = (await directRun(model, { input: { data: x, dims: [3, 16] } })).output!;
    const flat = await infer('mlp', { id: 'req-1', inputs: [{ name: 'input', shape: [3, 16], datatype: 'FP32', data: Array.from(x) }] }, 1);
    expect(flat.status).toBe(200);
    const body = await flat.json();
    expect(body).toMatchObject({ model_name: 'mlp', model_version: '1', id: 'req-1' });
    expect(body.outputs[0]).toMatchObject({ name: 'output', datatype: 'FP32', shape: [3, 5] });
    body.outputs[0].data.forEach((v: number, i: number) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));

    const nested = [0, 1, 2].map((r) => Array.from(x.subarray(r * 16, r * 16 + 16)));
    const res2 = await (await infer('mlp', { inputs: [{ name: 'input', shape: [3, 16], datatype: 'FP32', data: nested }] }, 1)).json();
    expect(res2.outputs[0].data).toEqual(body.outputs[0].data);
    expect(res2.id).toBeUndefined();
  });

  it('uses the latest version for a bare name', async () => {
    const res = await (await infer('mlp', { inputs: [{ name: 'input', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(0.5) }] })).json();
    expect(res.model_version).toBe('2');
  });

  it('filters outputs: a request that names one of two outputs gets only that one', async () => {
    expect((await uploadModel(p.url, 'two-out', twoOutputModel())).status).toBe(201);
    const x = { name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] };
    const all = await (await infer('two-out', { inputs: [x] })).json();
    expect(all.outputs.map((o: { name: string }) => o.name).sort()).toEqual(['first', 'second']);
    const one = await infer('two-out', { inputs: [x], outputs: [{ name: 'second' }] });
    expect(one.status).toBe(200);
    const body = await one.json();
    expect(body.outputs.map((o: { name: string }) => o.name)).toEqual(['second']);
    // x @ B = [1+4+9+16, ...] for each of B's three equal columns
    expect(body.outputs[0]).toMatchObject({ shape: [1, 3], data: [30, 30, 30] });
    const other = await (await infer('two-out', { inputs: [x], outputs: [{ name: 'first' }] })).json();
    expect(other.outputs).toMatchObject([{ name: 'first', shape: [1, 2], data: [4, 6] }]);
  });

  const good = { name: 'input', shape: [1, 16], datatype: 'FP32', data: Array(16).fill(1) };
  const cases: [string, unknown, number, RegExp][] = [
    ['unknown input', { inputs: [good, { ...good, name: 'nope' }] }, 400, /unknown input "nope"/],
    ['no inputs', { inputs: [] }, 400, /at least one input/],
    ['wrong datatype', { inputs: [{ ...good, datatype: 'INT64' }] }, 400, /datatype INT64 does not match the model's FP32/],
    ['unknown datatype', { inputs: [{ ...good, datatype: 'FLOAT' }] }, 400, /unknown datatype "FLOAT"/],
    ['shape does not match data', { inputs: [{ ...good, shape: [2, 16] }] }, 400, /has 16 elements but shape \[2,16\] needs 32/],
    ['shape does not match model', { inputs: [{ ...good, shape: [2, 8] }] }, 400, /does not match the model's \[-1,16\] at dimension 1/],
    ['wrong rank', { inputs: [{ ...good, shape: [16] }] }, 400, /rank 1/],
    ['non-numeric data', { inputs: [{ ...good, data: [...Array(15).fill(1), 'x'] }] }, 400, /data\[15\] must be a finite number/],
    [
      'ragged nesting',
      { inputs: [{ ...good, shape: [2, 16], data: [Array(16).fill(1), [3]] }] },
      400,
      /inputs\[0\] "input"\.data\[1\] has 1 elements, shape \[2,16\] says 16/,
    ],
    ['unknown output', { inputs: [good], outputs: [{ name: 'logits' }] }, 400, /unknown output "logits"/],
    ['inputs not an array', { inputs: 'x' }, 400, /request.inputs/],
    ['missing shape', { inputs: [{ name: 'input', datatype: 'FP32', data: [1] }] }, 400, /shape/],
  ];
  for (const [what, body, status, msg] of cases) {
    it(`rejects ${what} with ${status} and the protocol's error body`, async () => {
      const res = await infer('mlp', body);
      expect(res.status).toBe(status);
      const err = await res.json();
      expect(typeof err.error).toBe('string');
      expect(err.error).toMatch(msg);
    });
  }

  it("rejects a request that lacks one of the model's inputs, naming it", async () => {
    expect((await uploadModel(p.url, 'two', twoInputModel())).status).toBe(201);
    const a = { name: 'a', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] };
    const res = await infer('two', { inputs: [a] });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/missing input "b"/);
    const ok = await (await infer('two', { inputs: [a, { ...a, name: 'b' }] })).json();
    expect(ok.outputs[0]).toMatchObject({ name: 'sum', shape: [1, 2], data: [2 + 6, 4 + 8] });
  });

  it('404 for an unknown model or version, 400 for bad JSON, 415 for a wrong content type', async () => {
    const body = { inputs: [good] };
    const unknown = await infer('nosuch', body);
    expect(unknown.status).toBe(404);
    expect((await unknown.json()).error).toMatch(/model "nosuch" not found/);
    const noVersion = await infer('mlp', body, 9);
    expect(noVersion.status).toBe(404);
    expect((await noVersion.json()).error).toMatch(/no version 9/);
    const badJson = await postJson(`${p.url}/v2/models/mlp/infer`, '{"inputs": [');
    expect(badJson.status).toBe(400);
    expect((await badJson.json()).error).toMatch(/not valid JSON/);
    const wrongType = await fetch(`${p.url}/v2/models/mlp/infer`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'text/plain' } });
    expect(wrongType.status).toBe(415);
    expect(typeof (await wrongType.json()).error).toBe('string');
  });

  it('serves protocol metadata, health and readiness', async () => {
    expect((await fetch(`${p.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${p.url}/v2/health/ready`)).status).toBe(200);
    expect((await fetch(`${p.url}/v2/models/mlp/ready`)).status).toBe(200);
    expect((await fetch(`${p.url}/v2/models/nosuch/ready`)).status).toBe(404);
    const meta = await (await fetch(`${p.url}/v2/models/mlp`)).json();
    expect(meta).toMatchObject({
      name: 'mlp',
      versions: ['1', '2'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 16] }],
    });
    const server = await (await fetch(`${p.url}/v2`)).json();
    expect(server).toMatchObject({ name: 'modelq', extensions: [] });
  });
});

describe('workers', () => {
  it('two worker processes on one queue both take jobs', async () => {
    const res = await uploadModel(p.url, 'tiny', tinyMlp());
    expect(res.status).toBe(201);
    // One job per request (no coalescing), so there are many jobs to share.
    const cfg = await fetch(`${p.url}/v1/models/tiny/config`, {
      method: 'PUT',
      body: JSON.stringify({ maxBatch: 1, maxDelayMs: 0, instances: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(cfg.status).toBe(200);
    const req = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] };
    const answers = await Promise.all(Array.from({ length: 200 }, () => infer('tiny', req)));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const prefix = keyPrefix(p.cfg);
    const stats = await until(async () => {
      const s = await readWorkerStats(p.redis, prefix);
      const busy = s.filter((w) => (w.jobs.infer?.completed ?? 0) > 0);
      const total = s.reduce((n, w) => n + (w.jobs.infer?.completed ?? 0), 0);
      return busy.length === 2 && total >= 200 ? s : null;
    }, 'both workers to report completed infer jobs');
    expect(new Set(stats.map((s) => s.pid)).size).toBe(2);
  });

  it("exposes queue depths, HTTP figures and the workers' own figures in /metrics", async () => {
    const text = await (await fetch(`${p.url}/metrics`)).text();
    expect(text).toMatch(/modelq_queue_jobs\{queue="infer",state="completed"\} \d+/);
    expect(text).toMatch(/modelq_http_requests_total\{method="POST",route="\/v2\/models\/:name\/infer",status="200"\} \d+/);
    expect(text).toMatch(/modelq_http_request_duration_seconds_bucket/);
    const workers = [...text.matchAll(/^modelq_worker_up\{worker="([^"]+)",device="cpu"\} 1$/gm)];
    expect(workers).toHaveLength(2);
    const runs = [...text.matchAll(/^modelq_engine_runs_total\{worker="[^"]+"\} (\d+)$/gm)].map((m) => Number(m[1]));
    expect(runs.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    const busy = [...text.matchAll(/^modelq_worker_main_thread_busy_max_seconds\{worker="[^"]+"\} ([\d.e-]+)$/gm)].map((m) => Number(m[1]));
    expect(busy).toHaveLength(2);
    for (const b of busy) expect(b).toBeGreaterThan(0); // the publication itself takes some main-thread time
  });

  it('publishes an OpenAPI document generated from the request schemas', async () => {
    const doc = await (await fetch(`${p.url}/openapi.json`)).json();
    expect(doc.openapi).toMatch(/^3\./);
    const infer = doc.paths['/v2/models/{name}/infer'].post;
    expect(infer.requestBody.content['application/json'].schema.properties.inputs.type).toBe('array');
    expect(doc.paths['/v1/models/{name}/versions'].post.requestBody.content['application/octet-stream']).toBeDefined();
  });
});

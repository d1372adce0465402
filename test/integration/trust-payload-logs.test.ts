// Payload logs on a running platform (real Redis, worker, onnxruntime): sampling at 0.5 logs about
// half of 2,000 requests; every door (REST fast path and express, :predict, gRPC unary and stream) is
// logged; an alias's own setting overrides the model's; GET logs answers a time range with version,
// latency and request id; redacted inputs and JSON keys are absent from the stored Parquet bytes
// while the rest is there; with encryption at rest, the stored parts hold no plaintext and still read.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { listLogParts, type PayloadRecord } from '../../core/payload-logs.ts';
import { SIDECAR_SUFFIX } from '../../core/storage/encrypted-store.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { inferenceFor } from '../../producer/inference/service.ts';
import { buildModel, floatTensor, node } from '../../workers/onnx/builder.ts';
import { DT } from '../../workers/onnx/proto.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { DOORS, throughDoor } from '../helpers/doors.ts';
import { inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

/** x [n,2] -> score = x @ W [n,1]; note [n,1] (text) -> echo [n,1]; ssn [n,1] (text) -> ssn_shape [2]. */
const textModel = () =>
  buildModel({
    inputs: [
      { name: 'x', elemType: DT.FLOAT, shape: ['n', 2] },
      { name: 'note', elemType: DT.STRING, shape: ['n', 1] },
      { name: 'ssn', elemType: DT.STRING, shape: ['n', 1] },
    ],
    outputs: [
      { name: 'score', elemType: DT.FLOAT, shape: ['n', 1] },
      { name: 'echo', elemType: DT.STRING, shape: ['n', 1] },
      { name: 'ssn_shape', elemType: DT.INT64, shape: [2] },
    ],
    nodes: [node('MatMul', ['x', 'W'], ['score']), node('Identity', ['note'], ['echo']), node('Shape', ['ssn'], ['ssn_shape'])],
    initializers: [floatTensor('W', [2, 1], new Float32Array([1, 2]))],
  });

const textRequest = (i: number, note: string) => ({
  id: `text-${i}`,
  inputs: [
    { name: 'x', shape: [1, 2], datatype: 'FP32', data: [i, 1] },
    { name: 'note', shape: [1, 1], datatype: 'BYTES', data: [note] },
    { name: 'ssn', shape: [1, 1], datatype: 'BYTES', data: [`ssn-${i}-private`] },
  ],
});

const put = (url: string, body: unknown) => fetch(url, { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any; // tensors as the tests read them
type Logged = Omit<PayloadRecord, 'inputs' | 'outputs' | 'time'> & { time: string; inputs: Json; outputs: Json };

async function logs(url: string, query: string): Promise<Logged[]> {
  const res = await fetch(`${url}/logs?${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('content-type')).toContain('application/x-ndjson');
  return (await res.text())
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Every stored file under the data dir's logs/ folder, raw. */
const rawLogFiles = (dir: string) =>
  fs
    .readdirSync(path.join(dir, 'logs'), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => ({ name: path.join(e.parentPath, e.name), bytes: fs.readFileSync(path.join(e.parentPath, e.name)) }));

async function inParallel(n: number, width: number, f: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await f(next++);
    }),
  );
}

describe('payload logs, store not encrypted', () => {
  let p: TestPlatform;
  let server: RunningGrpcServer;
  let grpc: InferenceClient;
  beforeAll(async () => {
    // Uncompressed parts: a value present in a part is there as its bytes, so a search of the raw file means something.
    p = await startPlatform({ workers: 1, env: { MODELQ_PAYLOAD_LOG_CODEC: 'UNCOMPRESSED', MODELQ_PAYLOAD_LOG_FLUSH_MS: '500' } });
    server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
    grpc = inferenceClient(`127.0.0.1:${server.port}`);
  }, 120_000);
  afterAll(async () => {
    grpc?.close();
    await server?.close();
    await p?.stop();
  });

  it('samples half of 2,000 requests, logs every door, reads a time range back', async () => {
    expect((await uploadModel(p.url, 'plain', tinyMlp(3))).status).toBe(201);
    const m = `${p.url}/v1/models/plain`;
    expect((await fetch(`${m}/logging`)).status).toBe(200);
    expect(((await (await fetch(`${m}/logging`)).json()) as { logging: unknown }).logging).toBeNull();
    // Bad settings and unknown targets are refused.
    expect((await put(`${m}/logging`, { sample: 2 })).status).toBe(400);
    expect((await put(`${m}/logging`, { sample: 0.5, redact: ['has space'] })).status).toBe(400);
    expect((await put(`${m}/logging`, { sample: 0.5, extra: 1 })).status).toBe(400);
    expect((await put(`${p.url}/v1/models/nosuch/logging`, { sample: 0.5 })).status).toBe(404);
    expect((await put(`${m}/aliases/nosuch/logging`, { sample: 0.5 })).status).toBe(404);
    const set = await put(`${m}/logging`, { sample: 0.5 });
    expect(set.status).toBe(200);
    expect(await (await fetch(`${m}/logging`)).json()).toEqual({ name: 'plain', alias: null, logging: { sample: 0.5, redact: [] } });

    const t0 = Date.now();
    const n = 2000;
    await inParallel(n, 16, async (i) => {
      const body = JSON.stringify({ id: `s-${i}`, inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [i, 1, 2, 3] }] });
      const res = await fetch(`${p.url}/v2/models/plain/infer`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    });
    const t1 = Date.now();
    await inferenceFor(p.deps).payloads.flush();
    const sampled = await logs(m, `limit=10000&to=${t1}`);
    expect(sampled.length).toBeGreaterThanOrEqual(0.45 * n);
    expect(sampled.length).toBeLessThanOrEqual(0.55 * n);
    expect(new Set(sampled.map((r) => r.request_id)).size).toBe(sampled.length);
    for (const r of sampled) {
      expect(r).toMatchObject({ model: 'plain', version: 1, alias: 'latest', tenant: 'default', key_id: 'open', error: null, truncated: false });
      expect(r.latency_ms).toBeGreaterThan(0);
      const at = Date.parse(r.time);
      expect(at).toBeGreaterThanOrEqual(t0);
      expect(at).toBeLessThanOrEqual(t1);
      const i = Number(r.client_id!.slice(2));
      expect(r.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [i, 1, 2, 3] }]);
      expect(r.outputs[0]).toMatchObject({ name: 'output', shape: [1, 3] });
    }
    // Oldest first; limit bounds the answer.
    const times = sampled.map((r) => Date.parse(r.time));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(await logs(m, 'limit=7')).toHaveLength(7);
    expect((await fetch(`${m}/logs?limit=0`)).status).toBe(400);
    expect((await fetch(`${m}/logs?from=${t1}&to=${t0}`)).status).toBe(400);
    expect((await fetch(`${m}/logs?from=yesterday`)).status).toBe(400);

    // Parts are partitioned by tenant, model, version and hour.
    const parts = await listLogParts(p.deps.store, { tenant: 'default', model: 'plain' });
    expect(parts.length).toBeGreaterThan(0);
    for (const part of parts) expect(part.key).toMatch(/^logs\/default\/plain\/1\/\d{4}-\d{2}-\d{2}T\d{2}\/part-\d+-\d+-[0-9a-f]+\.parquet$/);

    // Every door logs; an alias's own setting (0) overrides the model's (1) for requests that name it.
    expect((await put(`${m}/logging`, { sample: 1 })).status).toBe(200);
    expect((await put(`${m}/aliases/prod`, { version: 1 })).status).toBe(200);
    expect((await put(`${m}/aliases/prod/logging`, { sample: 0 })).status).toBe(200);
    expect(await (await fetch(`${m}/aliases/prod/logging`)).json()).toEqual({ name: 'plain', alias: 'prod', logging: { sample: 0, redact: [] } });
    await new Promise((r) => setTimeout(r, 20));
    const t2 = Date.now();
    for (const [k, door] of DOORS.entries()) {
      const o = await throughDoor(door, { url: p.url, grpc, model: 'plain', row: [1000 + k, 0, 0, 0], id: `door-${k}` });
      expect(o.status, `${door}: ${o.message}`).toBe('ok');
    }
    for (let i = 0; i < 10; i++) {
      const res = await postJson(`${p.url}/v2/models/plain/versions/prod/infer`, {
        inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [-1, 0, 0, 0] }],
      });
      expect(res.status).toBe(200);
    }
    await inferenceFor(p.deps).payloads.flush();
    const t3 = Date.now();
    const doors = await logs(m, `from=${new Date(t2).toISOString()}&to=${t3}`);
    expect(doors.map((r) => (r.inputs[0].data as number[])[0]).sort()).toEqual(DOORS.map((_, k) => 1000 + k));
    for (const r of doors) expect(r.alias).toBe('latest');
    // Nothing before t2 in the range; everything before it still there without one.
    expect(doors.every((r) => Date.parse(r.time) >= t2)).toBe(true);
    expect(await logs(m, 'limit=10000')).toHaveLength(sampled.length + DOORS.length);
    // Per version.
    expect(await logs(m, `version=1&from=${t2}`)).toHaveLength(DOORS.length);
    expect(await logs(m, `version=2`)).toHaveLength(0);

    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`modelq_payload_log_written_total ${sampled.length + DOORS.length}\\b`));
    expect(metrics).toMatch(/modelq_payload_log_dropped_total 0\b/);

    // The range as a dataset.
    const ds = await fetch(`${m}/logs/dataset?from=${t2}&name=door-logs`, { method: 'POST' });
    expect(ds.status, await ds.clone().text()).toBe(201);
    const rec = (await ds.json()) as { id: string; rows: number; columns: { name: string }[]; logRecords: number };
    expect(rec.logRecords).toBe(DOORS.length);
    expect(rec.rows).toBe(DOORS.length);
    expect(rec.columns.map((c) => c.name)).toEqual(expect.arrayContaining(['request_id', 'time', 'version', 'input_0', 'input_3', 'output_output_0']));
    expect((await fetch(`${p.url}/v1/datasets/${rec.id}`)).status).toBe(200);
  }, 600_000);

  it('keeps redacted inputs and JSON keys out of the stored bytes', async () => {
    expect((await uploadModel(p.url, 'texty', textModel())).status).toBe(201);
    const m = `${p.url}/v1/models/texty`;
    expect((await put(`${m}/logging`, { sample: 1, redact: ['email', 'input.ssn'] })).status).toBe(200);
    const n = 40;
    for (let i = 0; i < n; i++) {
      const note = JSON.stringify({ email: `mark-${i}@secret.example`, city: `visible-city-${i}`, nested: [{ email: `deep-${i}@secret.example` }] });
      const res = await postJson(`${p.url}/v2/models/texty/infer`, textRequest(i, note));
      expect(res.status, await res.clone().text()).toBe(200);
      const answer = (await res.json()) as { outputs: { name: string; data: unknown[] }[] };
      // The answer itself is untouched: redaction is the log's alone.
      expect(answer.outputs.find((o) => o.name === 'echo')!.data[0]).toBe(note);
    }
    await inferenceFor(p.deps).payloads.flush();
    const files = rawLogFiles(p.cfg.MODELQ_DATA_DIR).filter((f) => f.name.includes(`${path.sep}texty${path.sep}`));
    expect(files.length).toBeGreaterThan(0);
    const raw = Buffer.concat(files.map((f) => f.bytes));
    expect(raw.includes('@secret.example')).toBe(false);
    expect(raw.includes('-private')).toBe(false);
    expect(raw.includes('"ssn"')).toBe(false);
    for (let i = 0; i < n; i++) expect(raw.includes(`visible-city-${i}\\"`), `visible-city-${i}`).toBe(true);
    expect(raw.includes('text-7')).toBe(true);

    const records = await logs(m, 'limit=1000');
    expect(records).toHaveLength(n);
    for (const r of records) {
      expect(r.inputs.map((t: { name: string }) => t.name)).toEqual(['x', 'note']);
      const i = Number(r.client_id!.slice(5));
      expect(JSON.parse(r.inputs[1].data[0])).toEqual({ city: `visible-city-${i}`, nested: [{}] });
      expect(r.outputs.map((t: { name: string }) => t.name)).toEqual(['score', 'echo', 'ssn_shape']);
      expect(JSON.parse(r.outputs[1].data[0])).toEqual({ city: `visible-city-${i}`, nested: [{}] });
      expect(r.outputs[0].data).toEqual([i + 2]);
    }
  }, 300_000);
});

describe('payload logs, store encrypted', () => {
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({ workers: 1, env: { MODELQ_MASTER_KEY: randomBytes(32).toString('base64'), MODELQ_PAYLOAD_LOG_CODEC: 'UNCOMPRESSED' } });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('stores no plaintext of a logged payload, and reads it back', async () => {
    expect((await uploadModel(p.url, 'sealed', textModel())).status).toBe(201);
    const m = `${p.url}/v1/models/sealed`;
    expect((await put(`${m}/logging`, { sample: 1 })).status).toBe(200);
    const n = 20;
    for (let i = 0; i < n; i++) expect((await postJson(`${p.url}/v2/models/sealed/infer`, textRequest(i, `sealed-note-${i}-plaintext`))).status).toBe(200);
    await inferenceFor(p.deps).payloads.flush();
    const files = rawLogFiles(p.cfg.MODELQ_DATA_DIR);
    expect(files.some((f) => f.name.endsWith('.parquet'))).toBe(true);
    expect(files.some((f) => f.name.endsWith(SIDECAR_SUFFIX))).toBe(true);
    for (const f of files) {
      expect(f.bytes.includes('-plaintext'), f.name).toBe(false);
      expect(f.bytes.includes('-private'), f.name).toBe(false);
      expect(f.bytes.includes('PAR1'), f.name).toBe(false);
    }
    const records = await logs(m, 'limit=100');
    expect(records).toHaveLength(n);
    expect(records.map((r) => r.inputs[1].data[0]).sort()).toEqual(Array.from({ length: n }, (_, i) => `sealed-note-${i}-plaintext`).sort());
  }, 300_000);
});

describe('payload logs, with API keys', () => {
  const ACME = 'k-acme-0123456789abcdef0123';
  const ACME_READ = 'k-acmer-0123456789abcdef012';
  const BETA = 'k-beta-0123456789abcdef0123';
  let p: TestPlatform;
  beforeAll(async () => {
    p = await startPlatform({
      workers: 1,
      env: {
        MODELQ_API_KEYS: JSON.stringify({
          [ACME]: { tenant: 'acme', scopes: ['admin'] },
          [ACME_READ]: { tenant: 'acme', scopes: ['read', 'infer'] },
          [BETA]: { tenant: 'beta', scopes: ['read', 'infer'] },
        }),
      },
    });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });
  const as = (key: string, init: RequestInit = {}): RequestInit => ({
    ...init,
    headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` },
  });

  it("logs other tenants' requests to a shared model for its owner only; settings need admin", async () => {
    const up = await fetch(
      `${p.url}/v1/models/owned/versions`,
      as(ACME, { method: 'POST', body: Buffer.from(tinyMlp(5)), headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(up.status).toBe(201);
    expect((await fetch(`${p.url}/v1/models/owned/sharing`, as(ACME, { method: 'PUT', body: JSON.stringify({ shared: true }) }))).status).toBe(200);
    const setting = (key: string) => fetch(`${p.url}/v1/models/owned/logging`, as(key, { method: 'PUT', body: JSON.stringify({ sample: 1 }) }));
    expect((await setting(BETA)).status).toBe(403);
    expect((await setting(ACME_READ)).status).toBe(403);
    expect((await setting(ACME)).status).toBe(200);
    const body = JSON.stringify({ id: 'from-beta', inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    expect((await fetch(`${p.url}/v2/models/owned/infer`, as(BETA, { method: 'POST', body }))).status).toBe(200);
    await inferenceFor(p.deps).payloads.flush();

    expect((await fetch(`${p.url}/v1/models/owned/logs`, as(BETA))).status).toBe(403);
    expect((await fetch(`${p.url}/v1/models/owned/logs/dataset`, as(BETA, { method: 'POST' }))).status).toBe(403);
    for (const key of [ACME, ACME_READ]) {
      const res = await fetch(`${p.url}/v1/models/owned/logs`, as(key));
      expect(res.status).toBe(200);
      const records = (await res.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Logged);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({ tenant: 'beta', client_id: 'from-beta', model: 'owned', version: 1 });
      expect(records[0]!.key_id).toMatch(/^[0-9a-f]{12}$/);
    }
    // The parts are the owner's: under its tenant.
    expect(await listLogParts(p.deps.store, { tenant: 'acme', model: 'owned' })).toHaveLength(1);
    expect(await listLogParts(p.deps.store, { tenant: 'beta' })).toHaveLength(0);
  }, 300_000);
});

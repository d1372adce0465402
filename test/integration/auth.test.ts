// API keys, scopes and tenants on the real producer: every route without a key, with a key that
// lacks the scope, and across tenants; the dashboard behind the same keys; the audit log.
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { buildDashboard } from '../../dashboard/app.ts';
import { ROUTES } from '../../producer/openapi.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'key-a-0123456789abcdef': { tenant: 'a', scopes: ['read', 'infer', 'submit'] },
  'key-b-0123456789abcdef': { tenant: 'b', scopes: ['read', 'submit'] },
  'key-read-0123456789abc': { tenant: 'a', scopes: ['read'] },
  'key-admin-0123456789ab': { tenant: 'ops', scopes: ['admin'] },
  'key-admin-a-0123456789': { tenant: 'a', scopes: ['admin'] },
  'key-admin-b-0123456789': { tenant: 'b', scopes: ['admin'] },
  'key-pub-b-0123456789ab': { tenant: 'b', scopes: ['read', 'infer', 'submit', 'publish'] },
  'key-platform-012345678': { tenant: 'ops', scopes: ['platform'] },
};
const [A, B, READ, ADMIN, ADMIN_A, ADMIN_B, PUB_B, PLATFORM] = Object.keys(KEYS) as [string, string, string, string, string, string, string, string];
const auditLines: string[] = [];
let p: TestPlatform;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _enc, cb) {
      auditLines.push(String(chunk));
      cb();
    },
  });
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS) }, logger: pino({ level: 'info' }, sink) });
});
afterAll(async () => {
  await p?.stop();
});

const call = (method: string, path: string, key?: string, body?: BodyInit, type = 'application/json', url = p.url) =>
  fetch(`${url}${path}`, { method, body, headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': type } : {}) } });

const concrete = (path: string) =>
  path.replace('{name}', 'm').replace('{version}', '1').replace('{alias}', 'prod').replace('{id}', 'batch_00000000000000000000');

describe('API keys', () => {
  it('every route but /v2/health/* answers 401 without a key', async () => {
    for (const r of ROUTES) {
      const res = await call(r.method.toUpperCase(), concrete(r.path));
      const open = r.path.startsWith('/v2/health/');
      expect(res.status, `${r.method} ${r.path}`).toBe(open ? 200 : 401);
      if (!open) {
        const body = await res.json();
        if (r.path.startsWith('/v2')) expect(typeof body.error).toBe('string');
        else expect(body.error.code).toBe('unauthorized');
      }
    }
    expect((await call('GET', '/v1/models', 'not-a-key-at-all-xyz')).status).toBe(401);
  });

  it("a key without the route's scope gets 403", async () => {
    const model = Buffer.from(buildMlp({ sizes: [4, 3], seed: 2 }));
    expect((await call('POST', '/v1/models/m/versions', A, model, 'application/octet-stream')).status).toBe(403);
    expect((await call('POST', '/v1/models/m/versions', ADMIN_A, model, 'application/octet-stream')).status).toBe(201);
    const infer = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    expect((await call('POST', '/v2/models/m/infer', READ, infer)).status).toBe(403);
    expect((await call('POST', '/v2/models/m/infer', B, infer)).status).toBe(403);
    expect((await call('POST', '/v2/models/m/infer', A, infer)).status).toBe(200);
    expect((await call('POST', '/v1/batches?model=m', READ, '{"input":[1,2,3,4]}')).status).toBe(403);
    expect((await call('PUT', '/v1/models/m/config', A, JSON.stringify({ maxBatch: 8 }))).status).toBe(403);
    expect((await call('GET', '/v1/models/m', READ)).status).toBe(200);
    // Platform-wide figures name every tenant's models: operators only.
    expect((await call('GET', '/metrics', ADMIN_A)).status).toBe(403);
    expect((await call('GET', '/metrics', PLATFORM)).status).toBe(200);
  });

  it('batches belong to their tenant: another tenant gets 404 and never sees them listed', async () => {
    const res = await call('POST', '/v1/batches?model=m', A, '{"input":[1,2,3,4]}\n{"input":[4,3,2,1]}');
    expect(res.status).toBe(202);
    const { id } = await res.json();
    await until(async () => (await (await call('GET', `/v1/batches/${id}`, A)).json()).status === 'completed', 'batch done');
    expect((await call('GET', `/v1/batches/${id}`, READ)).status).toBe(200); // same tenant, read scope
    for (const path of [`/v1/batches/${id}`, `/v1/batches/${id}/output`, `/v1/batches/${id}/errors`]) {
      const other = await call('GET', path, B);
      expect(other.status, path).toBe(404);
      expect((await other.json()).error.message).toMatch(/not found/);
    }
    expect((await call('POST', `/v1/batches/${id}/cancel`, B)).status).toBe(404);
    expect((await (await call('GET', '/v1/batches', B)).json()).data).toEqual([]);
    expect((await (await call('GET', '/v1/batches', A)).json()).data.map((b: { id: string }) => b.id)).toEqual([id]);
  });

  it('datasets and jobs belong to their tenant too', async () => {
    const csv = 'a,b,y\n' + Array.from({ length: 40 }, (_, i) => `${i % 7},${(i * 3) % 5},${i % 2}`).join('\n');
    const up = await call('POST', '/v1/datasets?format=csv&name=t', A, csv, 'text/csv');
    expect(up.status).toBe(201);
    const ds = await up.json();
    expect((await call('GET', `/v1/datasets/${ds.id}`, A)).status).toBe(200);
    expect((await call('GET', `/v1/datasets/${ds.id}`, B)).status).toBe(404);
    expect((await (await call('GET', '/v1/datasets', B)).json()).data).toEqual([]);
    const asB = await call('POST', '/v1/jobs/train', PUB_B, JSON.stringify({ dataset: ds.id, target: 'y', epochs: 1, registerAs: 'x' }));
    expect(asB.status).toBe(400);
    expect((await asB.json()).error.message).toMatch(/dataset/);
    const compress = await call('POST', '/v1/jobs/compress', ADMIN_A, JSON.stringify({ model: 'm', method: 'fp16' }));
    expect(compress.status).toBe(202);
    const { id } = await compress.json();
    expect((await call('GET', `/v1/jobs/${id}`, A)).status).toBe(200);
    expect((await call('GET', `/v1/jobs/${id}`, B)).status).toBe(404);
    expect((await call('POST', `/v1/jobs/${id}/cancel`, B)).status).toBe(404);
  });

  it("creating a version by any route needs publish and the model's owner; other tenants infer only shared models", async () => {
    const train = (key: string, registerAs: string) => call('POST', '/v1/jobs/train', key, JSON.stringify({ dataset: 'ds_none', target: 'y', registerAs }));
    const compress = (key: string, body: object) => call('POST', '/v1/jobs/compress', key, JSON.stringify({ method: 'fp16', ...body }));
    // submit alone never creates a version: refused at submission, before anything is queued.
    for (const res of [
      await train(A, 'm'),
      await train(A, 'fresh'),
      await compress(A, { model: 'm' }),
      await compress(A, { model: 'm', registerAs: 'fresh' }),
    ]) {
      expect(res.status).toBe(403);
      expect((await res.json()).error.message).toMatch(/"publish" scope/);
    }
    // The uploaded version records who made it; the model is its tenant's.
    const m = await (await call('GET', '/v1/models/m', A)).json();
    expect(m).toMatchObject({ owner: 'a', shared: false });
    expect(m.versions[0].lineage).toEqual({ source: 'upload', tenant: 'a', keyId: expect.stringMatching(/^[0-9a-f]{12}$/) });
    // Another tenant does not see a private model at all.
    const infer = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] });
    expect((await call('POST', '/v2/models/m/infer', PUB_B, infer)).status).toBe(404);
    expect((await call('GET', '/v1/models/m', PUB_B)).status).toBe(404);
    expect((await call('GET', '/v2/models/m', PUB_B)).status).toBe(404);
    expect((await (await call('GET', '/v1/models', PUB_B)).json()).models).toEqual([]);
    expect((await compress(PUB_B, { model: 'm', registerAs: 'b-m' })).status).toBe(404);
    // Its owner's admin shares it (another tenant's admin cannot): now b reads and infers it...
    expect((await call('PUT', '/v1/models/m/sharing', ADMIN_B, JSON.stringify({ shared: true }))).status).toBe(404);
    expect((await call('PUT', '/v1/models/m/sharing', ADMIN_A, JSON.stringify({ shared: true }))).status).toBe(200);
    expect((await call('POST', '/v2/models/m/infer', PUB_B, infer)).status).toBe(200);
    // ...but only the owner (or a platform operator) changes it, by any route.
    const model2 = Buffer.from(buildMlp({ sizes: [4, 3], seed: 9 }));
    for (const res of [
      await compress(PUB_B, { model: 'm' }),
      await train(PUB_B, 'm'),
      await call('POST', '/v1/models/m/versions', PUB_B, model2, 'application/octet-stream'),
      await call('POST', '/v1/models/m/versions', ADMIN_B, model2, 'application/octet-stream'),
      await call('PUT', '/v1/models/m/aliases/prod', ADMIN_B, JSON.stringify({ version: 1 })),
      await call('DELETE', '/v1/models/m/aliases/prod', ADMIN_B),
      await call('PUT', '/v1/models/m/config', ADMIN_B, JSON.stringify({ maxBatch: 8 })),
      await call('PUT', '/v1/models/m/sharing', ADMIN_B, JSON.stringify({ shared: false })),
    ]) {
      expect(res.status).toBe(403);
      expect((await res.json()).error.message).toMatch(/belongs to another tenant/);
    }
    expect((await call('PUT', '/v1/models/m/aliases/prod', PLATFORM, JSON.stringify({ version: 1 }))).status).toBe(200);
    expect((await (await call('GET', '/v1/models/m', A)).json()).versions.map((v: { lineage: { tenant: string } }) => v.lineage.tenant)).not.toContain('b');
    // b may derive its own model from a shared one: the version is b's, with b in its lineage.
    const res = await compress(PUB_B, { model: 'm', registerAs: 'b-m' });
    expect(res.status).toBe(202);
    const { id } = await res.json();
    const job = await until(
      async () => {
        const j = await (await call('GET', `/v1/jobs/${id}`, PUB_B)).json();
        return j.state === 'completed' || j.state === 'failed' ? j : null;
      },
      'compress job',
      60_000,
    );
    expect(job.state).toBe('completed');
    const bm = await (await call('GET', '/v1/models/b-m', PUB_B)).json();
    expect(bm).toMatchObject({ owner: 'b', shared: false });
    expect(bm.versions[0].lineage).toMatchObject({ tenant: 'b', keyId: expect.stringMatching(/^[0-9a-f]{12}$/), parent: { name: 'm', version: 1 } });
    expect((await call('GET', '/v1/models/b-m', A)).status).toBe(404);
  });

  it('writes an audit line for every state-changing call, with tenant and key id but never the key', async () => {
    const audits = auditLines.map((l) => JSON.parse(l)).filter((l) => l.audit);
    expect(audits.length).toBeGreaterThanOrEqual(5);
    const batch = audits.find((l) => l.route === '/v1/batches' && l.status === 202);
    expect(batch).toMatchObject({ tenant: 'a', method: 'POST' });
    expect(batch.keyId).toMatch(/^[0-9a-f]{12}$/);
    expect(audits.some((l) => l.status === 403 && l.method === 'PUT')).toBe(true);
    for (const k of Object.keys(KEYS)) expect(auditLines.join('')).not.toContain(k);
  });
});

describe('dashboard behind the same keys', () => {
  it('is for platform operators only, and audits every action', async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    );
    const app = buildDashboard({
      queues: p.deps.queues,
      admin: false,
      logger,
      keys: KeyRing.fromConfig({ MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_API_KEYS_FILE: undefined }),
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const basic = (k: string) => ({ authorization: `Basic ${Buffer.from(`user:${k}`).toString('base64')}` });
    try {
      const none = await fetch(`${url}/queues/api/queues`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/Basic/);
      // Every tenant's jobs are on the board: a tenant's read or admin key sees nothing there.
      for (const k of [READ, ADMIN, ADMIN_A]) {
        expect((await fetch(`${url}/queues/api/queues`, { headers: basic(k) })).status).toBe(403);
        expect((await fetch(`${url}/queues/api/queues/infer/pause`, { method: 'PUT', headers: basic(k) })).status).toBe(403);
      }
      expect(await p.deps.queues.queue('infer').isPaused()).toBe(false);
      expect((await fetch(`${url}/queues/api/queues`, { headers: basic(PLATFORM) })).status).toBe(200);
      expect((await fetch(`${url}/queues/api/queues/infer/pause`, { method: 'PUT', headers: { authorization: `Bearer ${PLATFORM}` } })).status).toBe(200);
      expect(await p.deps.queues.queue('infer').isPaused()).toBe(true);
      await p.deps.queues.queue('infer').resume();
      const audits = lines.map((l) => JSON.parse(l)).filter((l) => l.audit);
      expect(audits.filter((l) => l.status === 403)).toHaveLength(3);
      expect(audits.find((l) => l.status === 200)).toMatchObject({
        via: 'dashboard',
        tenant: 'ops',
        method: 'PUT',
        route: '/queues/api/queues/infer/pause',
        keyId: expect.stringMatching(/^[0-9a-f]{12}$/),
      });
      for (const k of Object.keys(KEYS)) expect(lines.join('')).not.toContain(k);
    } finally {
      server.close();
    }
  });
});

describe('rate limit', () => {
  it('answers 429 with Retry-After above MODELQ_RATE_LIMIT', async () => {
    const q = await startPlatform({ env: { MODELQ_RATE_LIMIT: '5/m' } });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 7; i++) {
        const res = await fetch(`${q.url}/v1/models`);
        statuses.push(res.status);
        if (res.status === 429) {
          retryAfter = res.headers.get('retry-after');
          expect((await res.json()).error).toMatchObject({ code: 'rate_limited', message: expect.stringMatching(/5\/m/) });
        }
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      expect(Number(retryAfter)).toBeGreaterThan(0);
      expect((await fetch(`${q.url}/v2/health/live`)).status).toBe(200);
    } finally {
      await q.stop();
    }
  });
});

describe('rate limit across producers', () => {
  it("counts a key's requests in Redis: two producers together allow the limit once", async () => {
    const one = await startPlatform({ env: { MODELQ_RATE_LIMIT: '5/m', MODELQ_API_KEYS: JSON.stringify(KEYS) } });
    const two = await startPlatform({ env: { ...one.env, MODELQ_DATA_DIR: one.env.MODELQ_DATA_DIR! } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push((await call('GET', '/v1/models', READ, undefined, undefined, i % 2 ? two.url : one.url)).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      // Another key has its own count.
      expect((await call('GET', '/v1/models', A, undefined, undefined, two.url)).status).toBe(200);
    } finally {
      await two.stop();
      await one.stop();
    }
  });
});

describe('MODELQ_AUTH=required', () => {
  it('refuses to start the producer without keys, naming the setting', async () => {
    const { spawn } = await import('node:child_process');
    const path = await import('node:path');
    const child = spawn(process.execPath, ['--import', 'tsx', 'producer/main.ts'], {
      cwd: path.resolve(import.meta.dirname, '../..'),
      env: { ...process.env, MODELQ_AUTH: 'required', MODELQ_API_KEYS: '', MODELQ_PORT: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (b) => (err += b));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(78); // a configuration error: npm start does not restart it
    expect(err).toMatch(/MODELQ_AUTH=required but no API keys/);
  });
});

describe('body size limits', () => {
  it('answers 413 naming the limit for protocol requests and uploads', async () => {
    const q = await startPlatform({ env: { MODELQ_MAX_REQUEST_MB: '1', MODELQ_MAX_UPLOAD_MB: '1' } });
    try {
      const big = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }], pad: 'x'.repeat(2 * 1024 * 1024) });
      const infer = await fetch(`${q.url}/v2/models/m/infer`, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } });
      expect(infer.status).toBe(413);
      expect((await infer.json()).error).toMatch(/limit is 1048576 bytes/);
      const upload = await fetch(`${q.url}/v1/models/m/versions`, {
        method: 'POST',
        body: Buffer.alloc(2 * 1024 * 1024, 1),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(upload.status).toBe(413);
      expect((await upload.json()).error).toMatchObject({ code: 'payload_too_large', message: expect.stringMatching(/limit is 1048576 bytes/) });
    } finally {
      await q.stop();
    }
  });
});

// The audit stream: every state-changing request and refusal lands in Redis and GET /v1/audit
// returns them filtered by actor, action and time; a tenant's key sees only its tenant's entries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import type { AuditEntry } from '../../core/audit-stream.ts';
import { KeyRing } from '../../core/auth.ts';
import { startGrpcServer } from '../../producer/grpc/server.ts';
import { bearer, codeOf, inferenceClient } from '../helpers/grpc-client.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const OPS = 'k-ops-0123456789abcdef0123';
const ACME = 'k-acme-0123456789abcdef012';
const BETA = 'k-beta-0123456789abcdef012';
let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({
    env: {
      MODELQ_API_KEYS: JSON.stringify({
        [OPS]: { tenant: 'ops', scopes: ['read', 'platform'] },
        [ACME]: { tenant: 'acme', scopes: ['read', 'submit'] },
        [BETA]: { tenant: 'beta', scopes: ['read', 'submit'] },
      }),
    },
  });
});
afterAll(async () => {
  await p?.stop();
});

const as = (key: string, init: RequestInit = {}) => ({ ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${key}` } });
const upload = (key: string) =>
  fetch(`${p.url}/v1/datasets?format=csv&name=t`, as(key, { method: 'POST', body: 'a,b\n1,2\n', headers: { 'content-type': 'text/csv' } }));
const audit = async (key: string, query = '') => {
  const r = await fetch(`${p.url}/v1/audit${query}`, as(key));
  return { status: r.status, body: (await r.json()) as { entries: AuditEntry[]; next: string | null } };
};

describe('audit stream', () => {
  it('records changes and refusals, filters them, and scopes them to the tenant', async () => {
    const start = Date.now();
    expect((await upload(ACME)).status).toBe(201);
    expect((await upload(BETA)).status).toBe(201);
    expect((await upload('k-unknown-0123456789abcdef')).status).toBe(401);
    const refused = await fetch(
      `${p.url}/v1/models/m/versions`,
      as(ACME, { method: 'POST', body: 'x', headers: { 'content-type': 'application/octet-stream' } }),
    );
    expect(refused.status).toBe(403);

    const all = await audit(OPS);
    expect(all.status).toBe(200);
    expect(all.body.entries.map((e) => [e.actor, e.action, e.status])).toEqual([
      ['acme', 'POST /v1/datasets', 201],
      ['beta', 'POST /v1/datasets', 201],
      [null, 'POST /v1/datasets', 401],
      ['acme', 'POST /v1/models/m/versions', 403],
    ]);
    expect(Date.parse(all.body.entries[0]!.at)).toBeGreaterThanOrEqual(start - 1000);

    expect((await audit(OPS, '?actor=acme')).body.entries.map((e) => e.status)).toEqual([201, 403]);
    expect((await audit(OPS, `?action=${encodeURIComponent('POST /v1/datasets')}`)).body.entries).toHaveLength(3);
    expect((await audit(OPS, `?from=${Date.now() + 60_000}`)).body.entries).toEqual([]);
    expect((await audit(OPS, `?to=${new Date(start - 60_000).toISOString()}`)).body.entries).toEqual([]);
    const page = await audit(OPS, '?limit=3');
    expect(page.body.entries).toHaveLength(3);
    expect((await audit(OPS, `?after=${page.body.next}`)).body.entries.map((e) => e.status)).toEqual([403]);

    // A tenant sees its own entries only, and may not ask for another's.
    const mine = await audit(ACME);
    expect(mine.body.entries.map((e) => [e.actor, e.status])).toEqual([
      ['acme', 201],
      ['acme', 403],
    ]);
    expect((await audit(ACME, '?actor=beta')).status).toBe(403);
    expect((await audit(ACME, '?from=yesterday')).status).toBe(400);
    // Reads are not audited: the queries above added nothing.
    expect((await audit(OPS)).body.entries).toHaveLength(4);
  });

  it('records gRPC refusals in the stream too', async () => {
    const since = Date.now();
    const server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
    const c = inferenceClient(`127.0.0.1:${server.port}`);
    try {
      const req = { model_name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1] }] };
      expect(await codeOf(c.call('ModelInfer', req, bearer(ACME)))).toBe(status.PERMISSION_DENIED);
    } finally {
      c.close();
      await server.close();
    }
    const got = await audit(OPS, `?from=${since}&action=GRPC`);
    expect(got.body.entries.map((e) => [e.actor, e.action, e.status])).toEqual([
      ['acme', 'GRPC /inference.GRPCInferenceService/ModelInfer', 'PERMISSION_DENIED'],
    ]);
  });
});

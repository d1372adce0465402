// /metrics names every tenant's models: it needs the `platform` scope under every spelling express
// routes to it (any case, a trailing slash), directly and through the dashboard's /api proxy.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { buildDashboard } from '../../dashboard/app.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'key-read-0123456789abc': { tenant: 'a', scopes: ['read'] },
  'key-admin-a-0123456789': { tenant: 'a', scopes: ['admin'] },
  'key-platform-012345678': { tenant: 'ops', scopes: ['platform'] },
};
const [READ, ADMIN_A, PLATFORM] = Object.keys(KEYS) as [string, string, string];
const SPELLINGS = ['/metrics', '/metrics/', '/METRICS', '/Metrics', '/Metrics/', '/mEtRiCs'];

let p: TestPlatform;
let dashboard: Server;
let dashboardUrl: string;

beforeAll(async () => {
  p = await startPlatform({ env: { MODELQ_API_KEYS: JSON.stringify(KEYS) } });
  const app = buildDashboard({ queues: p.deps.queues, admin: false, keys: KeyRing.fromConfig(p.cfg), producerUrl: p.url });
  dashboard = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  dashboardUrl = `http://127.0.0.1:${(dashboard.address() as AddressInfo).port}`;
});
afterAll(async () => {
  dashboard?.closeAllConnections();
  await new Promise((r) => dashboard?.close(r));
  await p?.stop();
});

const get = (url: string, key?: string) => fetch(url, { headers: key ? { authorization: `Bearer ${key}` } : {} });

describe('/metrics scope', () => {
  it('every spelling that reaches the handler needs the platform scope', async () => {
    for (const path of SPELLINGS) {
      expect((await get(`${p.url}${path}`)).status, `${path} without a key`).toBe(401);
      for (const key of [READ, ADMIN_A]) {
        const res = await get(`${p.url}${path}`, key);
        expect(res.status, `${path} with ${key}`).toBe(403);
        expect((await res.json()).error.message).toMatch(/platform/);
      }
      const ok = await get(`${p.url}${path}`, PLATFORM);
      expect(ok.status, `${path} with the platform key`).toBe(200);
      expect(await ok.text()).toMatch(/^# HELP/m);
    }
  });

  it("the dashboard's /api proxy is held to the same scope", async () => {
    for (const path of SPELLINGS) {
      expect((await get(`${dashboardUrl}/api${path}`, READ)).status, `/api${path} with a read key`).toBe(403);
      expect((await get(`${dashboardUrl}/api${path}`, PLATFORM)).status, `/api${path} with the platform key`).toBe(200);
    }
  });
});

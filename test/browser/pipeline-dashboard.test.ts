// A pipeline version's page in Debian's Chromium: its steps drawn as a graph (inputs -> steps ->
// outputs, the per-box step marked, each step linked to its model version), no ONNX download, and
// its lineage drawn from the steps' versions.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { createLogger } from '../../core/logger.ts';
import { buildDashboard } from '../../dashboard/app.ts';
import { mlp } from '../fixtures/models.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const KEY = 'key-admin-0123456789ab';
const KEYS = { [KEY]: { tenant: 'a', scopes: ['admin'] } };

let p: TestPlatform;
let server: Server;
let dash: string;
let browser: Browser;

const call = async (route: string, body: unknown) => {
  const res = await fetch(`${p.url}${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' },
    body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return res.json();
};

beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS) } });
  const app = buildDashboard({
    queues: p.deps.queues,
    redis: p.redis,
    admin: false,
    producerUrl: p.url,
    logger: createLogger('dashboard-test', 'silent'),
    keys: KeyRing.fromConfig({ MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_API_KEYS_FILE: undefined }),
  });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  dash = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  await call('/v1/models/embed/versions', mlp({ sizes: [4, 8, 6], seed: 2 }));
  await call('/v1/models/head/versions', mlp({ sizes: [6, 3], seed: 3 }));
  await call('/v1/models/chain/pipelines', {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
    steps: [
      { name: 'embed', model: 'embed', inputs: { input: 'x' } },
      { name: 'classify', model: 'head', inputs: { input: 'embed.output' } },
    ],
    outputs: { scores: 'classify.output' },
  });
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  await p?.stop();
});

describe('a pipeline version page', () => {
  it('draws the steps as a graph, links each step to its version, and offers no ONNX download', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    await ctx.addInitScript((k) => sessionStorage.setItem('modelq.apiKey', k), KEY);
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${dash}/#/models/chain/versions/1`);
    await page.waitForSelector('[data-section="pipeline"] svg g[data-node]');
    const nodes = await page.$$eval('[data-section="pipeline"] g[data-node]', (gs) => gs.map((g) => g.getAttribute('data-node')));
    expect(nodes).toEqual(['input:x', 'step:embed', 'step:classify', 'output:scores']);
    const edges = await page.$$eval('[data-section="pipeline"] path[data-from]', (ps) =>
      ps.map((x) => `${x.getAttribute('data-from')} > ${x.getAttribute('data-to')}`),
    );
    expect(edges.sort()).toEqual(['input:x > step:embed', 'step:classify > output:scores', 'step:embed > step:classify']);
    const links = await page.$$eval('[data-section="pipeline"] a', (as) => as.map((a) => a.getAttribute('href')));
    expect(links).toEqual(['#/models/embed/versions/1', '#/models/head/versions/1']);
    expect(await page.$('[data-download="onnx"]')).toBeNull();
    // The lineage: both step versions feed the pipeline's version.
    await page.waitForSelector('[data-section="lineage"] path[data-from]', { state: 'attached' });
    const lineage = await page.$$eval('[data-section="lineage"] path[data-from]', (ps) =>
      ps.map((x) => `${x.getAttribute('data-from')} > ${x.getAttribute('data-to')}`),
    );
    expect(lineage.sort()).toEqual(['version:embed@1 > version:chain@1', 'version:head@1 > version:chain@1']);
    expect(errors).toEqual([]);
    await ctx.close();
  });
});

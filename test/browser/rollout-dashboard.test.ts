// The model page's rollout view in Debian's Chromium: a weighted alias's split, a running rollout with
// its steps and history, and pause / abort from the page; a read-only key's click shows the refusal.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { createLogger } from '../../core/logger.ts';
import { buildDashboard } from '../../dashboard/app.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const ADMIN = 'key-admin-0123456789ab';
const PUBLISH = 'key-publish-0123456789';
const READ = 'key-read-only-01234567';
const KEYS = {
  [ADMIN]: { tenant: 'a', scopes: ['admin'] },
  [PUBLISH]: { tenant: 'a', scopes: ['read', 'publish'] },
  [READ]: { tenant: 'a', scopes: ['read'] },
};

let p: TestPlatform;
let server: Server;
let dash: string;
let browser: Browser;
let rolloutId: string;

const call = async (route: string, method: string, body?: unknown, key = ADMIN) => {
  const res = await fetch(`${p.url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { 'content-type': body instanceof Uint8Array ? 'application/octet-stream' : 'application/json' }),
    },
    ...(body === undefined ? {} : { body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return res.json();
};

beforeAll(async () => {
  // A long interval: the rollout stays at its first step while the page is looked at.
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_ROLLOUT_INTERVAL_MS: '600000' } });
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
  for (const seed of [1, 2]) await call('/v1/models/canary/versions', 'POST', tinyMlp(seed));
  await call('/v1/models/canary/aliases/prod', 'PUT', { version: 1 });
  await call('/v1/models/canary/aliases/split', 'PUT', {
    versions: [
      { version: 1, weight: 90 },
      { version: 2, weight: 10 },
    ],
  });
  rolloutId = ((await call('/v1/models/canary/rollouts', 'POST', { alias: 'prod', candidate: 2, steps: [5, 50, 100] })) as { id: string }).id;
});
afterAll(async () => {
  await browser?.close();
  await new Promise((r) => server?.close(r));
  await p?.stop();
});

async function open(key: string): Promise<Page> {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  await ctx.addInitScript((k) => sessionStorage.setItem('modelq.apiKey', k), key);
  const page = await ctx.newPage();
  await page.goto(`${dash}/#/models/canary`);
  await page.waitForSelector(`tr[data-rollout="${rolloutId}"]`);
  return page;
}

describe('the model page', () => {
  it('shows the split, the rollout and its history', async () => {
    const page = await open(READ);
    const model = await page.textContent('[data-section=model]');
    expect(model).toContain('split → v1 90%, v2 10%');
    expect(model).toContain('prod → v1 95%, v2 5%');
    const row = page.locator(`tr[data-rollout="${rolloutId}"]`);
    expect(await row.textContent()).toContain('[5%] → 50% → 100%');
    expect(await row.locator('[data-status]').textContent()).toBe('running');
    expect(await page.locator('tr[data-audit=start]').count()).toBe(1);
    // A read-only key sees the buttons, and the producer's refusal when it presses one.
    await row.locator('[data-action=pause]').click();
    await page.waitForSelector('.error');
    expect(await page.textContent('.error')).toContain('publish');
  });

  it('pauses and aborts with a publish key', async () => {
    const page = await open(PUBLISH);
    const row = page.locator(`tr[data-rollout="${rolloutId}"]`);
    await row.locator('[data-action=pause]').click();
    await page.waitForSelector(`tr[data-rollout="${rolloutId}"] [data-status=paused]`);
    await page.locator(`tr[data-rollout="${rolloutId}"] [data-action=abort]`).click();
    await page.waitForSelector(`tr[data-rollout="${rolloutId}"] [data-status=aborted]`);
    expect(await page.locator('tr[data-audit]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-audit')))).toEqual(['start', 'pause', 'abort']);
    const m = (await call('/v1/models/canary', 'GET')) as { aliases: Record<string, number>; routes?: Record<string, unknown> };
    expect(m.aliases.prod).toBe(1);
    expect(m.routes?.prod).toBeUndefined();
  });
});

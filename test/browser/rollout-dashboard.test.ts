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
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

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

  it('shows the versions of each split side by side: split, requests, errors, latency, agreement, output drift', async () => {
    await call('/v1/models/canary/aliases/mirror', 'PUT', { versions: [{ version: 1, weight: 100 }], shadow: { version: 2, fraction: 1 } });
    const body = (i: number) => ({ id: `req-${i}`, inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [i / 7, -1, 2 - i / 5, 0.25] }] });
    for (const alias of ['split', 'mirror']) for (let i = 0; i < 30; i++) await call(`/v2/models/canary/versions/${alias}/infer`, 'POST', body(i));
    type Live = { versions: { version: number; role: string; requests: number; errors: number; agreement: number | null; outputDrift: number | null }[] };
    const live = async (alias: string) => (await call(`/v1/models/canary/aliases/${alias}/live`, 'GET')) as Live;
    await until(async () => {
      const [s, m] = [await live('split'), await live('mirror')];
      // Figures are per version, whichever alias brought the request: versions 1 and 2 answered all 60.
      return s.versions.reduce((n, v) => n + v.requests, 0) === 60 && m.versions.find((v) => v.role === 'shadow')!.requests === 30;
    }, 'the figures of the 60 requests');
    const page = await open(READ);
    await page.waitForSelector('tr[data-live="mirror:2"]');
    for (const alias of ['split', 'mirror']) {
      for (const v of (await live(alias)).versions) {
        const row = page.locator(`tr[data-live="${alias}:${v.version}"]`);
        expect(await row.locator('td').nth(1).textContent()).toBe(v.role);
        expect(await row.locator('[data-field=requests]').textContent()).toBe(String(v.requests));
        expect(await row.locator('[data-field=errors]').textContent()).toBe('0');
        const agreement = await row.locator('[data-field=agreement]').textContent();
        if (v.agreement === null) expect(agreement).toBe('—');
        else expect(agreement).toMatch(/%$/);
        const drift = await row.locator('[data-field=drift]').textContent();
        if (v.outputDrift === null) expect(drift).toBe('—');
        else expect(drift).toMatch(/^\d[\d.]* (ok|warn|alert)$/);
      }
    }
    expect(await page.locator('tr[data-live="mirror:2"] td').nth(2).textContent()).toBe('shadow 100%');
    expect(await page.locator('tr[data-live="split:2"] td').nth(2).textContent()).toBe('10%');
  });
});

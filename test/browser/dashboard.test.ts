// The results UI in Debian's Chromium (playwright-core) against the real platform: a producer, one
// worker process and the dashboard proxying to the producer, all behind API keys of two tenants.
// Screenshots of every page go to test-results/dashboard/ (gitignored).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { createLogger } from '../../core/logger.ts';
import { buildDashboard } from '../../dashboard/app.ts';
import { rows, SLOW_FEATURES, slowMlp } from '../fixtures/models.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const A_SUBMIT = 'key-a-submit-0123456789';
const A_READ = 'key-a-read-only-0123456';
const B_SUBMIT = 'key-b-submit-0123456789';
const OPS = 'key-ops-platform-012345';
const KEYS = {
  [A_SUBMIT]: { tenant: 'a', scopes: ['read', 'submit', 'publish'] },
  [A_READ]: { tenant: 'a', scopes: ['read'] },
  [B_SUBMIT]: { tenant: 'b', scopes: ['read', 'submit', 'publish'] },
  [OPS]: { tenant: 'ops', scopes: ['platform'] },
};
const SHOTS = path.resolve(import.meta.dirname, '../../test-results/dashboard');

let p: TestPlatform;
let server: Server;
let dash: string;
let browser: Browser;
const pageErrors: string[] = [];

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
async function apiJson(route: string, key = A_SUBMIT, init: RequestInit = {}) {
  const res = await fetch(`${p.url}${route}`, { ...init, headers: { ...auth(key), ...(init.headers ?? {}) } });
  const json = await res.json();
  if (!res.ok) throw new Error(`${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const postJson = (route: string, body: unknown, key = A_SUBMIT) =>
  apiJson(route, key, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
const jobDone = (id: string) =>
  until(
    async () => {
      const j = await apiJson(`/v1/jobs/${id}`);
      return ['completed', 'failed', 'cancelled'].includes(j.state) ? j : null;
    },
    `job ${id}`,
    120_000,
  );

/** A page of the dashboard with `key` in its sessionStorage (as if typed into the key form). */
async function open(hash: string, key: string | null = A_SUBMIT, width = 1360): Promise<Page> {
  const ctx = await browser.newContext({ acceptDownloads: true, viewport: { width, height: 900 } });
  if (key) await ctx.addInitScript((k) => sessionStorage.setItem('modelq.apiKey', k), key);
  const page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${dash}/${hash}`);
  return page;
}
/**
 * Pairs of the page's boxes (panels, tables, graphs, notices) that overlap, neither inside the
 * other, as "a ∩ b" descriptions: empty when the layout keeps every box apart.
 */
const overlaps = (page: Page) =>
  page.$$eval('main table, main .card, main svg, main .chart, main [data-panel], main .actions, main pre, main .notice, main h2', (els) => {
    const name = (e: Element) =>
      `${e.tagName.toLowerCase()}${[...e.attributes]
        .filter((a) => a.name.startsWith('data-') || a.name === 'class')
        .map((a) => `[${a.name}=${a.value}]`)
        .join('')}`;
    const boxes = els.map((e) => ({ e, r: e.getBoundingClientRect() })).filter(({ r }) => r.width > 0 && r.height > 0);
    const found: string[] = [];
    for (let i = 0; i < boxes.length; i++)
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i]!, boxes[j]!];
        if (a.e.contains(b.e) || b.e.contains(a.e)) continue;
        const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
        const hgt = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
        if (w > 0.5 && hgt > 0.5) found.push(`${name(a.e)} ∩ ${name(b.e)} (${w.toFixed(0)}×${hgt.toFixed(0)} px)`);
      }
    return found;
  });
const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

/** Clicks a download link and returns the file's bytes. */
async function download(page: Page, selector: string): Promise<Buffer> {
  const [d] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  return fs.readFileSync((await d.path())!);
}

/** 600 rows of x0..x3 and a class from a fixed rule (seeded). */
function dataset(n: number): string {
  let s = 11;
  const r = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const lines = ['x0,x1,x2,x3,kind'];
  for (let i = 0; i < n; i++) {
    const v = [r(), r(), r(), r()];
    lines.push(`${v.map((x) => x.toFixed(4)).join(',')},${v[0]! + v[1]! > 0.3 ? 'up' : v[2]! > 0 ? 'left' : 'down'}`);
  }
  return lines.join('\n') + '\n';
}

let trainJob: {
  id: string;
  result: { model: { name: string; version: number }; metrics: Record<string, number> };
  progress: { curve: { epoch: number; loss: number; valLoss: number; valMetric: number }[] };
};
let batchA = '';
let compressJob: { id: string; result: { model: { name: string; version: number }; report: Record<string, unknown> & { dataset: Record<string, number> } } };

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
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

  const ds = await apiJson('/v1/datasets?format=csv&name=compass', A_SUBMIT, { method: 'POST', body: dataset(600), headers: { 'content-type': 'text/csv' } });
  const t = await postJson('/v1/jobs/train', {
    dataset: ds.id,
    target: 'kind',
    model: { type: 'mlp', hidden: [16] },
    epochs: 8,
    learningRate: 0.02,
    patience: 50,
    seed: 5,
    registerAs: 'compass',
  });
  trainJob = await jobDone(t.id);
  expect(trainJob.result, JSON.stringify(trainJob)).toBeTruthy();
  const c = await postJson('/v1/jobs/compress', { model: 'compass@1', method: 'quantize-int8', dataset: ds.id, registerAs: 'compass-int8' });
  compressJob = await jobDone(c.id);
  expect(compressJob.result, JSON.stringify(compressJob)).toBeTruthy();
  const up = await fetch(`${p.url}/v1/models/slow/versions`, {
    method: 'POST',
    body: Buffer.from(slowMlp()),
    headers: { ...auth(A_SUBMIT), 'content-type': 'application/octet-stream' },
  });
  expect(up.status).toBe(201);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  server?.closeAllConnections();
  server?.close();
  await p?.stop();
  expect(pageErrors, 'uncaught errors in the pages').toEqual([]);
});

describe('dashboard in a browser', () => {
  it('asks for a key, then lists the models; a trained version shows its lineage, metrics and a working download', async () => {
    const page = await open('#/models', null);
    await page.waitForSelector('#key-dialog[open]');
    await page.fill('#key-input', A_SUBMIT);
    await page.click('#key-form button');
    await page.waitForSelector('tr[data-model="compass-int8"]');
    expect(await page.textContent('#who')).toContain('tenant a');
    expect(await page.evaluate(() => sessionStorage.getItem('modelq.apiKey'))).toBe(A_SUBMIT);
    await shot(page, 'models');

    // A model: its versions with sha256 and aliases, serving config, readiness (a worker takes the infer queue).
    const v = await apiJson('/v1/models/compass/versions/1');
    const config = await apiJson('/v1/models/compass/config');
    await page.click('tr[data-model="compass"] a');
    await page.waitForSelector('tr[data-version="1"]');
    expect(await page.getAttribute('tr[data-version="1"] [data-sha256]', 'data-sha256')).toBe(v.sha256);
    expect(await page.textContent('tr[data-version="1"]')).toContain('latest');
    expect(await page.textContent('[data-section="serving"]')).toContain(`Serving: maxBatch${config.maxBatch}`);
    await page.waitForSelector('[data-section="model"] [data-status="ready"]');
    await shot(page, 'model');

    await page.goto(`${dash}/#/models/compass/versions/1`);
    await page.waitForSelector('[data-section="lineage"] g[data-kind="compress"]');
    const nodes = await page.$$eval('[data-section="lineage"] g[data-node]', (gs) =>
      gs.map((g) => ({ id: g.getAttribute('data-node'), kind: g.getAttribute('data-kind') })),
    );
    expect(nodes).toEqual(
      expect.arrayContaining([
        { id: `dataset:${v.lineage.dataset}`, kind: 'dataset' },
        { id: `job:${trainJob.id}`, kind: 'train' },
        { id: 'version:compass@1', kind: 'version' },
        { id: `job:${compressJob.id}`, kind: 'compress' },
        { id: 'version:compass-int8@1', kind: 'version' },
      ]),
    );
    const edges = await page.$$eval('[data-section="lineage"] path[data-from]', (ps) =>
      ps.map((e) => `${e.getAttribute('data-from')} > ${e.getAttribute('data-to')}`),
    );
    expect(edges).toEqual(
      expect.arrayContaining([
        `dataset:${v.lineage.dataset} > job:${trainJob.id}`,
        `job:${trainJob.id} > version:compass@1`,
        `version:compass@1 > job:${compressJob.id}`,
        `job:${compressJob.id} > version:compass-int8@1`,
      ]),
    );
    expect(await page.getAttribute('[data-section="version"] [data-sha256]', 'data-sha256')).toBe(v.sha256);
    for (const [k, val] of Object.entries(v.metrics as Record<string, number>)) {
      expect(Number(await page.getAttribute(`[data-section="metrics"] [data-metric="${k}"]`, 'data-value')), k).toBe(val);
    }
    // A trained version has a drift reference: its features are listed with their level
    const drift = await apiJson('/v1/models/compass/versions/1/drift');
    await page.waitForSelector('[data-section="drift"] tr[data-drift-feature]');
    const shownDrift = await page.$$eval('[data-section="drift"] tr[data-drift-feature]', (trs) =>
      trs.map((tr) => `${tr.getAttribute('data-drift-feature')}:${tr.querySelector('[data-status]')?.getAttribute('data-status')}`),
    );
    expect(shownDrift).toEqual(drift.features.map((f: { name: string; level: string }) => `${f.name}:${f.level}`));
    await shot(page, 'version');
    const onnx = await download(page, 'a[data-download="onnx"]');
    expect(onnx.length).toBe(v.bytes);
    expect(createHash('sha256').update(onnx).digest('hex')).toBe(v.sha256);
  });

  it("draws a training job's curves from its per-epoch progress", async () => {
    const page = await open(`#/jobs/${trainJob.id}`);
    await page.waitForSelector('[data-section="result"]');
    const drawn = await page.$eval('#chart-loss', (el) => (el as HTMLElement & { uplot: { data: number[][] } }).uplot.data);
    const curve = trainJob.progress.curve;
    expect(curve.length).toBeGreaterThanOrEqual(2);
    expect(drawn).toEqual([curve.map((c) => c.epoch), curve.map((c) => c.loss), curve.map((c) => c.valLoss)]);
    const metric = await page.$eval('#chart-metric', (el) => (el as HTMLElement & { uplot: { data: number[][] } }).uplot.data);
    expect(metric[1]).toEqual(curve.map((c) => c.valMetric));
    expect(await page.textContent('[data-hp="epochs"]')).toBe('8');
    expect(Number(await page.getAttribute('[data-section="result"] [data-metric="accuracy"]', 'data-value'))).toBe(trainJob.result.metrics.accuracy);
    await shot(page, 'train-job');
  });

  it("redraws a training job's curves while it runs", async () => {
    const ds = await apiJson('/v1/datasets?format=csv&name=longer', A_SUBMIT, { method: 'POST', body: dataset(4000), headers: { 'content-type': 'text/csv' } });
    // Enough epochs that the job is still running whatever the machine's speed; cancelled below.
    const t = await postJson('/v1/jobs/train', {
      dataset: ds.id,
      target: 'kind',
      model: { type: 'mlp', hidden: [32] },
      epochs: 10_000,
      patience: 10_000,
      seed: 9,
      registerAs: 'longer',
    });
    const page = await open(`#/jobs/${t.id}`);
    await page.waitForSelector('#chart-loss');
    const drawnEpochs = () => page.evaluate(() => (JSON.parse(document.getElementById('chart-loss')?.dataset.points ?? '[[]]') as number[][])[0]!.length);
    const grows = (than: number) =>
      page.waitForFunction((n) => (JSON.parse(document.getElementById('chart-loss')?.dataset.points ?? '[[]]') as number[][])[0]!.length > n, than, {
        timeout: 60_000,
        polling: 100,
      });
    await grows(0);
    const first = await drawnEpochs();
    await grows(first); // redrawn with more epochs, without a reload
    const second = await drawnEpochs();
    const running = await apiJson(`/v1/jobs/${t.id}`);
    expect(running.state).toBe('active');
    expect(second).toBeGreaterThan(first);
    expect(running.progress.curve.length).toBeGreaterThanOrEqual(second);
    await postJson(`/v1/jobs/${t.id}/cancel`, {});
    expect((await jobDone(t.id)).state).toBe('cancelled');
  });

  it('shows a compression report with the figures of GET /v1/jobs/{id} and links to both versions', async () => {
    const page = await open(`#/jobs/${compressJob.id}`);
    await page.waitForSelector('[data-section="report"]');
    const r = compressJob.result.report;
    const want: Record<string, unknown> = {
      bytesBefore: r.bytesBefore,
      bytesAfter: r.bytesAfter,
      rowsPerSecondBefore: r.rowsPerSecondBefore,
      rowsPerSecondAfter: r.rowsPerSecondAfter,
      argmaxAgreement: r.argmaxAgreement,
      maxAbsDiff: r.maxAbsDiff,
      ...(r.rowsPerSecondBatch1Before !== undefined
        ? { rowsPerSecondBatch1Before: r.rowsPerSecondBatch1Before, rowsPerSecondBatch1After: r.rowsPerSecondBatch1After }
        : {}),
      ...(r.cosine !== undefined ? { cosine: r.cosine } : {}),
      'dataset.accuracyBefore': r.dataset.accuracyBefore,
      'dataset.accuracyAfter': r.dataset.accuracyAfter,
      'dataset.argmaxAgreement': r.dataset.argmaxAgreement,
    };
    const shown = await page.$$eval('[data-section="report"] td[data-field]', (tds) =>
      Object.fromEntries(tds.map((td) => [td.getAttribute('data-field'), Number(td.getAttribute('data-value'))])),
    );
    expect(shown).toMatchObject(want);
    expect(await page.$$eval('a[data-version-link]', (as) => as.map((a) => a.getAttribute('data-version-link')))).toEqual(['compass@1', 'compass-int8@1']);
    await shot(page, 'compress-job');
    await page.goto(`${dash}/#/jobs`);
    await page.waitForSelector(`tr[data-job="${compressJob.id}"]`);
    expect(await page.$$eval('tr[data-job]', (trs) => trs.map((t) => t.getAttribute('data-job')))).toEqual(
      expect.arrayContaining([compressJob.id, trainJob.id]),
    );
    await shot(page, 'jobs');
  });

  it('follows a running batch: the progress bar moves, the rows/s chart fills, then completed with working downloads', async () => {
    const n = 6000;
    const x = rows(n, SLOW_FEATURES, 3);
    const bad = new Set([10, 2000, 5000]);
    const body = Array.from({ length: n }, (_, i) =>
      JSON.stringify({ id: `r${i}`, input: bad.has(i) ? [1, 2] : Array.from(x.subarray(i * SLOW_FEATURES, (i + 1) * SLOW_FEATURES)) }),
    ).join('\n');
    const b = await apiJson('/v1/batches?model=slow&chunkRows=300', A_SUBMIT, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
    batchA = b.id;
    const page = await open(`#/batches/${b.id}`);
    await page.waitForSelector('.bar.big');
    // Every progress value the page shows, as it shows it.
    await page.evaluate(() => {
      const w = window as unknown as { seen: number[] };
      w.seen = [];
      const record = () => {
        const bar = document.querySelector<HTMLElement>('.bar.big');
        if (bar) w.seen.push(Number(bar.dataset.progress));
      };
      record();
      new MutationObserver(record).observe(document.getElementById('main')!, { subtree: true, childList: true });
    });
    await page.waitForFunction(() => (window as unknown as { seen: number[] }).seen.some((v) => v > 0 && v < 1), undefined, { timeout: 60_000 });
    await shot(page, 'batch-running');
    await page.waitForSelector('.actions [data-status="completed"]', { timeout: 120_000 });
    const seen = await page.evaluate(() => (window as unknown as { seen: number[] }).seen);
    const moving = [...new Set(seen)];
    expect(moving.filter((v) => v > 0 && v < 1).length, `progress values shown: ${moving.join(', ')}`).toBeGreaterThanOrEqual(1);
    expect(moving).toEqual([...moving].sort((a, c) => a - c));
    expect(moving.at(-1)).toBe(1);
    const rate = await page.$eval('#chart-rate', (el) => (el as HTMLElement & { uplot: { data: number[][] } }).uplot.data);
    expect(rate[1]!.some((v) => v > 0)).toBe(true);
    expect(await page.textContent('[data-count="completed"]')).toBe((n - bad.size).toLocaleString('en-US'));
    expect(await page.textContent('[data-count="failed"]')).toBe(String(bad.size));
    await page.waitForSelector('[data-section="errors"] pre');
    const errorLines = (await page.textContent('[data-section="errors"] pre'))!.split('\n').map((l) => JSON.parse(l));
    expect(errorLines.map((e) => e.row)).toEqual([...bad]);
    await shot(page, 'batch-completed');

    const output = (await download(page, 'a[data-download="output"]')).toString('utf8');
    expect(output).toBe(await (await fetch(`${p.url}/v1/batches/${b.id}/output`, { headers: auth(A_SUBMIT) })).text());
    expect(output.trim().split('\n')).toHaveLength(n - bad.size);
    const errors = (await download(page, 'a[data-download="errors"]')).toString('utf8');
    expect(
      errors
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).row),
    ).toEqual([...bad]);
    const csv = (await download(page, 'a[data-download="output-csv"]')).toString('utf8');
    expect(csv.split('\n')[0]).toMatch(/^row,id,output_0,/);

    await page.goto(`${dash}/#/batches`);
    await page.waitForSelector(`tr[data-batch="${b.id}"] [data-status="completed"]`);
    await shot(page, 'batches');
  });

  it('a read-only key has no cancel button and the API refuses it; a submit key cancels from the page', async () => {
    const n = 30_000;
    const x = rows(n, SLOW_FEATURES, 4);
    const body = Array.from({ length: n }, (_, i) => JSON.stringify({ input: Array.from(x.subarray(i * SLOW_FEATURES, (i + 1) * SLOW_FEATURES)) })).join('\n');
    const b = await apiJson('/v1/batches?model=slow&chunkRows=500', A_SUBMIT, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
    const reader = await open(`#/batches/${b.id}`, A_READ);
    await reader.waitForSelector('.actions [data-status]');
    const shown = await reader.evaluate(() => ({
      status: document.querySelector('.actions [data-status]')!.getAttribute('data-status'),
      cancel: !!document.getElementById('cancel'),
      download: !!document.querySelector('[data-download="output"]'),
    }));
    expect(['queued', 'running']).toContain(shown.status);
    expect(shown).toMatchObject({ cancel: false, download: true });
    const refused = await reader.evaluate(async (id) => {
      const res = await fetch(`/api/v1/batches/${id}/cancel`, {
        method: 'POST',
        headers: { 'x-modelq-ui': '1', authorization: `Bearer ${sessionStorage.getItem('modelq.apiKey')}` },
      });
      return { status: res.status, body: await res.json() };
    }, b.id);
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    await shot(reader, 'batch-read-only');

    const writer = await open(`#/batches/${b.id}`, A_SUBMIT);
    await writer.click('#cancel');
    await writer.waitForSelector('.actions [data-status="cancelled"]', { timeout: 120_000 });
    expect((await apiJson(`/v1/batches/${b.id}`)).status).toBe('cancelled');
    expect(await writer.$('#cancel')).toBeNull();
  });

  it("tenant b sees none of tenant a's models, batches or jobs, in the UI and on the board", async () => {
    const page = await open('#/batches', B_SUBMIT);
    await page.waitForSelector('text=No batches yet');
    await page.goto(`${dash}/#/jobs`);
    await page.waitForSelector('text=No jobs yet');
    await page.goto(`${dash}/#/models`);
    await page.waitForSelector('text=No models yet');
    for (const hash of [`#/batches/${batchA}`, `#/jobs/${trainJob.id}`, '#/models/compass/versions/1']) {
      await page.goto(`${dash}/${hash}`);
      await page.waitForSelector('[data-error="not_found"]');
    }
    expect(await page.content()).not.toContain('compass@1');
    await shot(page, 'tenant-b-not-found');

    // The board shows every tenant's payloads: a tenant's key is refused, a platform key is not.
    const board = await browser.newContext({ httpCredentials: { username: 'b', password: B_SUBMIT } });
    const bp = await board.newPage();
    const res = await bp.goto(`${dash}/queues/`);
    expect(res!.status()).toBe(403);
    const api = await bp.goto(`${dash}/queues/api/queues?activeQueue=batch&status=completed`);
    expect(api!.status()).toBe(403);
    expect(await bp.content()).not.toContain(batchA);
    const ops = await (await browser.newContext({ httpCredentials: { username: 'ops', password: OPS } })).newPage();
    const opsRes = await ops.goto(`${dash}/queues/api/queues?activeQueue=batch&status=completed`);
    expect(opsRes!.status()).toBe(200);
    expect(await ops.content()).toContain(batchA);
  });

  it('shows the live workers to a platform key, with their queues, device and engine figures; a tenant key is told why not', async () => {
    const page = await open('#/workers', OPS);
    // Workers publish every MODELQ_STATS_INTERVAL_MS (5 s) with a 15 s expiry: on a machine loaded by
    // the other test files a row can take a few polls to appear (seen once in a full CI run).
    await page.waitForSelector('tr[data-worker]', { timeout: 90_000 });
    const row = await page.$eval('tr[data-worker]', (tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
    expect(row[2]).toBe('cpu');
    expect(row[3]).toContain('score');
    // The slow model's batches ran on this worker: its engine row count is what it published.
    const published = Number((await page.getAttribute('tr[data-worker] [data-field="rows"]', 'data-value'))!);
    expect(published).toBeGreaterThanOrEqual(6000 - 3);
    await page.waitForSelector('tr[data-queue="score"]');
    // A CPU-only platform: the GPU queues read as not started, not as a fault; score as consumed.
    expect(await page.$eval('tr[data-queue="score-gpu"]', (tr) => [tr.hasAttribute('data-not-started'), tr.querySelectorAll('td')[1]!.textContent])).toEqual([
      true,
      'no GPU workers started',
    ]);
    expect(await page.$eval('tr[data-queue="score"]', (tr) => [tr.hasAttribute('data-not-started'), tr.querySelectorAll('td')[1]!.textContent])).toEqual([
      false,
      '1 worker',
    ]);
    await shot(page, 'workers');
    const tenant = await open('#/workers', A_SUBMIT);
    await tenant.waitForSelector('[data-error="forbidden"]');
  }, 150_000);

  it('lays out a version page without overlapping boxes at 1400 and 1920 px', async () => {
    for (const width of [1400, 1920]) {
      for (const ref of ['compass-int8/versions/1', 'compass/versions/1']) {
        const page = await open(`#/models/${ref}`, A_SUBMIT, width);
        await page.waitForSelector('[data-section="metrics"]');
        await page.waitForSelector('[data-section="lineage"] svg');
        // The details table holds the longest values (the sha256); it must stay beside Metrics, not under it.
        const [details, metrics] = await Promise.all(
          ['[data-section="version"]', '[data-panel="metrics"]'].map((sel) => page.$eval(sel, (e) => e.getBoundingClientRect().toJSON())),
        );
        expect(details.width, `${ref} at ${width}px`).toBeGreaterThan(0);
        expect(metrics.left, `${ref} at ${width}px: Metrics beside the details`).toBeGreaterThanOrEqual(details.right);
        expect(await overlaps(page), `${ref} at ${width}px`).toEqual([]);
        await shot(page, `version-${ref.split('/')[0]}-${width}`);
        await page.context().close();
      }
    }
  });

  it('shows Workers and Queues in the navigation only to a key that may open them', async () => {
    const navOf = async (key: string) => {
      const page = await open('#/models', key);
      await page.waitForSelector('#who:not(:empty)');
      const shown = await page.$$eval('header nav a', (as) =>
        as.filter((a) => !(a as HTMLElement).hidden && a.getBoundingClientRect().width > 0).map((a) => a.textContent!.trim()),
      );
      await page.context().close();
      return shown;
    };
    const reader = await navOf(A_READ);
    expect(reader).toEqual(['Models', 'Batches', 'Jobs', 'Datasets']);
    const ops = await navOf(OPS);
    expect(ops).toEqual(expect.arrayContaining(['Workers', 'Queues ↗']));
    // What the navigation hides, the dashboard refuses to that key anyway.
    expect((await fetch(`${dash}/ui/workers`, { headers: auth(A_READ) })).status).toBe(403);
  });

  it('lists the datasets a key can see, with columns, types and statistics, and the jobs and models made from each', async () => {
    const ds = (await apiJson('/v1/models/compass/versions/1')).lineage.dataset;
    const profile = await apiJson(`/v1/datasets/${ds}`);
    const page = await open('#/datasets', A_READ);
    await page.waitForSelector(`tr[data-dataset="${ds}"]`);
    expect(await page.textContent(`tr[data-dataset="${ds}"]`)).toContain('compass');
    await page.click(`tr[data-dataset="${ds}"] a`);
    await page.waitForSelector('[data-section="columns"] tr[data-column]');
    const cols = await page.$$eval('[data-section="columns"] tr[data-column]', (trs) =>
      trs.map((tr) => ({
        name: tr.getAttribute('data-column'),
        type: tr.getAttribute('data-type'),
        missing: Number(tr.querySelector('[data-field="missing"]')!.getAttribute('data-value')),
        distinct: Number(tr.querySelector('[data-field="distinct"]')!.getAttribute('data-value')),
      })),
    );
    const stats = new Map(profile.stats.map((s: { name: string }) => [s.name, s]));
    expect(cols).toEqual(
      profile.columns.map((c: { name: string; type: string }) => {
        const s = stats.get(c.name) as { missing: number; distinct: number };
        return { name: c.name, type: c.type, missing: s.missing, distinct: s.distinct };
      }),
    );
    expect(cols.map((c) => c.name)).toEqual(['x0', 'x1', 'x2', 'x3', 'kind']);
    await page.waitForSelector('[data-section="jobs"] tr[data-job]');
    expect(await page.$$eval('[data-section="models"] tr[data-made]', (trs) => trs.map((tr) => tr.getAttribute('data-made')))).toContain('compass@1');
    expect(await page.$$eval('[data-section="jobs"] tr[data-job]', (trs) => trs.map((tr) => tr.getAttribute('data-job')))).toEqual(
      expect.arrayContaining([trainJob.id, compressJob.id]),
    );
    await shot(page, 'dataset');
    // Tenant b sees none of tenant a's datasets.
    const other = await open('#/datasets', B_SUBMIT);
    await other.waitForFunction(() => !document.querySelector('main')!.textContent!.includes('Loading'));
    expect(await other.$(`tr[data-dataset="${ds}"]`)).toBeNull();
    await other.goto(`${dash}/#/datasets/${ds}`);
    await other.waitForSelector('[data-error]');
  });

  it('leads a compression report with agreement on the dataset and says what it was measured on', async () => {
    const verdict = compressJob.result.report.verdict as { data: string; source: string };
    expect(verdict.data).toBe('dataset');
    const page = await open(`#/jobs/${compressJob.id}`);
    await page.waitForSelector('[data-section="report"]');
    expect(await page.getAttribute('[data-section="measured-on"]', 'data-data')).toBe('dataset');
    expect(await page.textContent('[data-section="measured-on"]')).toContain(verdict.source);
    const first = await page.$$eval('[data-section="report"] tbody tr th', (ths) => ths.map((th) => th.textContent));
    expect(first[0]).toMatch(/dataset/i);
    expect(first.filter((t) => /samples|generated/.test(t!))).toEqual([]);
    // The version page's Metrics lead with the same figure.
    const v = await open('#/models/compass-int8/versions/1');
    await v.waitForSelector('[data-section="metrics"]');
    expect(await v.$eval('[data-section="metrics"] tr th', (th) => th.textContent)).toBe('argmax agreement (dataset)');
    expect(await v.$('[data-warning="slower"]')).toBeNull();
  });

  it('warns on the version page of a compression registered with allowSlower although slower than its parent', async () => {
    // The registry record a worker writes for such a compression (verdict.slower, rows/s below the
    // parent's): made from the real int8 version, since whether int8 is slower depends on the CPU.
    const int8 = await apiJson('/v1/models/compass-int8/versions/1');
    const c = int8.metrics.compression;
    const slower = {
      ...c,
      rowsPerSecondBefore: c.rowsPerSecondAfter * 2,
      rowsPerSecondBatch1Before: (c.rowsPerSecondBatch1After ?? 1) * 2,
      verdict: { ...c.verdict, slower: true, passed: true },
    };
    const { version: _v, createdAt: _c, ...rest } = int8;
    await p.deps.registry.createVersion('compass-slower', { ...rest, sha256: rest.sha256, metrics: { compression: slower } }, { tenant: 'a' });
    const page = await open('#/models/compass-slower/versions/1');
    await page.waitForSelector('[data-warning="slower"]');
    expect(await page.textContent('[data-warning="slower"]')).toMatch(/Slower than its parent.*allowSlower/);
    expect(await overlaps(page)).toEqual([]);
  });

  it("shows a version's model card: held-out metrics, calibration and what it does not know, as the card route says; the Markdown downloads", async () => {
    const card = await apiJson('/v1/models/compass/versions/1/card');
    const page = await open('#/models/compass/versions/1');
    await page.waitForSelector('[data-section="card"] [data-card-section="heldout"]');
    const value = (sel: string) => page.getAttribute(sel, 'data-value').then(Number);
    expect(await value('[data-card="heldout.accuracy"]')).toBe(card.metrics.heldout.accuracy);
    expect(await value('[data-card="heldout.rows"]')).toBe(card.metrics.heldout.rows);
    for (const c of card.metrics.heldout.perClass as { class: string; support: number; recall: number | null }[]) {
      expect(await value(`tr[data-class="${c.class}"] [data-card="support"]`)).toBe(c.support);
      if (c.recall !== null) expect(await value(`tr[data-class="${c.class}"] [data-card="recall"]`)).toBe(c.recall);
    }
    const shownConfusion = await page.$$eval('[data-card-section="confusion"] tr[data-confusion-row]', (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => Number(td.textContent))),
    );
    expect(shownConfusion).toEqual(card.metrics.heldout.confusion);
    // Calibration: the ECE and every non-empty reliability bin.
    expect(card.calibration.ece).toEqual(expect.any(Number));
    expect(await value('[data-card-section="calibration"] [data-card="ece"]')).toBe(card.calibration.ece);
    const bins = (card.calibration.bins as { from: number; rows: number }[]).filter((b) => b.rows > 0);
    expect(await page.$$eval('[data-card-section="calibration"] tr[data-bin]', (trs) => trs.map((tr) => tr.getAttribute('data-bin')))).toEqual(
      bins.map((b) => b.from.toFixed(1)),
    );
    // No explained batch of this version: importance says it does not know, and why.
    expect(await page.textContent('[data-unknown="importance"]')).toContain(card.importance.unknown);
    await shot(page, 'version-card');
    const md = (await download(page, 'a[data-download="card"]')).toString('utf8');
    expect(md).toContain('# compass version 1');
    expect(md).toContain('## Calibration');

    // A compressed version's card: no held-out predictions of its own, said so on the page.
    const int8 = await apiJson('/v1/models/compass-int8/versions/1/card');
    const v = await open('#/models/compass-int8/versions/1');
    await v.waitForSelector('[data-section="card"]');
    expect(await v.textContent('[data-unknown="metrics.heldout"]')).toContain(int8.metrics.heldout.unknown);
    expect(await v.textContent('[data-unknown="calibration"]')).toContain(int8.calibration.unknown);
  });

  it('the /api proxy passes the key through, and a download ticket opens only its own path', async () => {
    expect((await fetch(`${dash}/api/v1/batches`)).status).toBe(401);
    const listed = await fetch(`${dash}/api/v1/batches`, { headers: auth(A_READ) });
    expect(listed.status).toBe(200);
    expect((await listed.json()).data.map((b: { id: string }) => b.id)).toContain(batchA);
    const path = `/api/v1/batches/${batchA}/errors`;
    const issued = await fetch(`${dash}/ui/tickets`, {
      method: 'POST',
      headers: { ...auth(A_READ), 'content-type': 'application/json' },
      body: JSON.stringify({ path }),
    });
    const { ticket } = await issued.json();
    expect((await fetch(`${dash}${path}?ticket=${ticket}`)).status).toBe(200);
    const elsewhere = await fetch(`${dash}/api/v1/batches/${batchA}/output?ticket=${ticket}`);
    expect(elsewhere.status).toBe(401);
    expect((await elsewhere.json()).error.message).toMatch(/ticket/);
    expect(
      (await fetch(`${dash}/ui/tickets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path }) })).status,
    ).toBe(401);
    // Basic credentials (what a browser caches for the board's prompt) and calls without the UI's header do not act through the proxy.
    const basic = await fetch(`${dash}/api/v1/batches/${batchA}/cancel`, {
      method: 'POST',
      headers: { 'x-modelq-ui': '1', authorization: `Basic ${Buffer.from(`x:${A_SUBMIT}`).toString('base64')}` },
    });
    expect(basic.status).toBe(401);
    const noHeader = await fetch(`${dash}/api/v1/batches/${batchA}/cancel`, { method: 'POST', headers: auth(A_SUBMIT) });
    expect(noHeader.status).toBe(403);
    expect((await noHeader.json()).error.message).toMatch(/x-modelq-ui/);
    const bad = await fetch(`${dash}/ui/tickets`, {
      method: 'POST',
      headers: { ...auth(A_READ), 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/queues/api/queues' }),
    });
    expect(bad.status).toBe(400);
  });
});

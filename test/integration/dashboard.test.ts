// The dashboard against the real Redis: bull-board's JSON API lists every queue and its jobs, and
// refuses mutations unless the board was built with admin: true.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { ALL_QUEUES, Queues } from '../../core/queues.ts';
import { createRedis, workerRedisOptions } from '../../core/redis.ts';
import { buildDashboard } from '../../dashboard/app.ts';

const REDIS_URL = process.env.MODELQ_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface AppQueue {
  name: string;
  readOnlyMode: boolean;
  allowRetries: boolean;
  counts: Record<string, number>;
  jobs: { id: string; name: string; data: unknown; failedReason?: string }[];
}

let prefix: string;
let redis: Redis;
let queues: Queues;
const servers: Server[] = [];
const extraConnections: Redis[] = [];

beforeEach(() => {
  prefix = `{mqtest-${randomBytes(6).toString('hex')}}`;
  redis = createRedis(REDIS_URL, workerRedisOptions());
  queues = new Queues(prefix, redis);
});

afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  for (const name of ALL_QUEUES) await queues.queue(name).obliterate({ force: true });
  await queues.close();
  for (const c of extraConnections.splice(0)) await c.quit();
  const left = await redis.keys(`${prefix}*`);
  await redis.quit();
  expect(left, 'keys left behind under the test prefix').toEqual([]);
});

/** Starts the app on an ephemeral port and returns its base URL. */
async function serve(admin: boolean, basePath?: string, keys?: KeyRing): Promise<string> {
  const app = buildDashboard({ queues, admin, basePath, ...(keys ? { keys, redis } : {}) });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => (err ? reject(err) : resolve(s)));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function listQueues(base: string, query = ''): Promise<AppQueue[]> {
  const res = await fetch(`${base}/queues/api/queues${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { queues: AppQueue[] }).queues;
}

/** Takes the job like a worker would and fails it, so there is something to retry. No timing involved. */
async function failNextInferJob(): Promise<Job> {
  const connection = createRedis(REDIS_URL, workerRedisOptions());
  extraConnections.push(connection);
  const worker = new Worker('infer', null, { connection, prefix });
  try {
    const token = 'test-token';
    const job = await worker.getNextJob(token);
    expect(job, 'a waiting job to take').toBeTruthy();
    await job!.moveToFailed(new Error('engine exploded'), token, false);
    return job!;
  } finally {
    await worker.close();
  }
}

const put = (url: string) => fetch(url, { method: 'PUT' });

describe('dashboard', () => {
  it('answers /healthz', async () => {
    const base = await serve(false);
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('serves the results UI at / and the board at /queues/', async () => {
    const base = await serve(false);
    const ui = await fetch(`${base}/`);
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/text\/html/);
    expect(await ui.text()).toContain('/js/app.js');
    const board = await fetch(`${base}/queues/`);
    expect(board.status).toBe(200);
    expect(await board.text()).toContain('modelq');
  });

  it('tells the UI which keys may open Workers and Queues; the page hides both links until it knows', async () => {
    const KEYS = { 'read-key-0123456789': { tenant: 'a', scopes: ['read'] }, 'ops-key-0123456789ab': { tenant: 'ops', scopes: ['platform'] } };
    const base = await serve(false, undefined, KeyRing.fromConfig({ MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_API_KEYS_FILE: undefined }));
    const session = async (key: string) =>
      (await (await fetch(`${base}/ui/session`, { headers: { authorization: `Bearer ${key}` } })).json()) as { platform: boolean };
    expect((await session('read-key-0123456789')).platform).toBe(false);
    expect((await session('ops-key-0123456789ab')).platform).toBe(true);
    expect((await fetch(`${base}/ui/workers`, { headers: { authorization: 'Bearer read-key-0123456789' } })).status).toBe(403);
    const html = await (await fetch(`${base}/`)).text();
    expect(html).toMatch(/<a [^>]*id="workers-link"[^>]*\bhidden\b[^>]*>/);
    expect(html).toMatch(/<a [^>]*id="queues-link"[^>]*\bhidden\b[^>]*>/);
    expect(html).toContain('href="#/datasets"');
    const page = await fetch(`${base}/js/datasets.js`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('/v1/datasets');
  });

  it('lists every queue and shows a waiting job', async () => {
    const added = await queues.queue('infer').add('predict', { model: 'iris', rows: 3 });
    const base = await serve(false);

    const all = await listQueues(base);
    expect(all.map((q) => q.name).sort()).toEqual([...ALL_QUEUES].sort());
    for (const q of all) {
      expect(q.readOnlyMode, q.name).toBe(true);
      expect(q.allowRetries, q.name).toBe(false);
      expect(q.counts.waiting, q.name).toBe(q.name === 'infer' ? 1 : 0);
    }

    const infer = (await listQueues(base, '?activeQueue=infer&status=waiting')).find((q) => q.name === 'infer');
    expect(infer?.jobs).toHaveLength(1);
    expect(infer?.jobs[0]).toMatchObject({ id: added.id, name: 'predict', data: { model: 'iris', rows: 3 } });

    // Reading a single job is allowed in read-only mode too.
    const one = await fetch(`${base}/queues/api/queues/infer/${added.id}`);
    expect(one.status).toBe(200);
    expect(await one.json()).toMatchObject({ job: { id: added.id, data: { model: 'iris', rows: 3 } } });
  });

  it('refuses mutating calls in read-only mode and changes nothing', async () => {
    const failed = await queues.queue('infer').add('predict', { n: 1 }, { attempts: 1 });
    const waiting = await queues.queue('infer').add('predict', { n: 2 });
    expect((await failNextInferJob()).id).toBe(failed.id);
    const base = await serve(false);

    const calls = [
      `${base}/queues/api/queues/infer/${failed.id}/retry`,
      `${base}/queues/api/queues/infer/retry/failed`,
      `${base}/queues/api/queues/infer/${waiting.id}/clean`,
      `${base}/queues/api/queues/infer/clean/failed`,
      `${base}/queues/api/queues/infer/pause`,
      `${base}/queues/api/queues/infer/empty`,
    ];
    for (const url of calls) {
      const res = await put(url);
      expect(res.status, url).toBe(405);
      expect(await res.json(), url).toEqual({ error: { key: 'ERRORS.QUEUE_READ_ONLY' } });
    }

    const q = queues.queue('infer');
    expect(await q.getJobState(failed.id!)).toBe('failed');
    expect(await q.getJobState(waiting.id!)).toBe('waiting');
    expect(await q.isPaused()).toBe(false);
  });

  it('performs them with admin: true', async () => {
    const failed = await queues.queue('infer').add('predict', { n: 1 }, { attempts: 1 });
    const waiting = await queues.queue('infer').add('predict', { n: 2 });
    expect((await failNextInferJob()).id).toBe(failed.id);
    const base = await serve(true);
    const q = queues.queue('infer');

    const listed = (await listQueues(base, '?activeQueue=infer&status=failed')).find((x) => x.name === 'infer');
    expect(listed).toMatchObject({ readOnlyMode: false, allowRetries: true, counts: { failed: 1, waiting: 1 } });
    expect(listed?.jobs[0]).toMatchObject({ id: failed.id, failedReason: 'engine exploded' });

    expect((await put(`${base}/queues/api/queues/infer/${failed.id}/retry`)).status).toBe(204);
    expect(await q.getJobState(failed.id!)).toBe('waiting');

    expect((await put(`${base}/queues/api/queues/infer/${waiting.id}/clean`)).status).toBe(204);
    expect(await q.getJobState(waiting.id!)).toBe('unknown');

    expect((await put(`${base}/queues/api/queues/infer/pause`)).status).toBe(200);
    expect(await q.isPaused()).toBe(true);
  });

  it('mounts under a base path while /healthz stays at the root', async () => {
    const base = await serve(false, '/admin/queues');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const res = await fetch(`${base}/admin/queues/api/queues`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { queues: AppQueue[] }).queues).toHaveLength(ALL_QUEUES.length);
    expect((await fetch(`${base}/queues/api/queues`)).status).toBe(404);
  });
});

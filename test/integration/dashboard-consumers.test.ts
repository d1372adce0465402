// The dashboard tells the truth about queues without consumers: a queue no worker of its kind was
// started for (the GPU queues on a CPU-only platform, a queue no running worker lists) is shown as
// not started, both on bull-board and on the Workers page; a queue whose workers are gone is still
// flagged. Against a real worker process and the real Redis.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { Queues } from '../../core/queues.ts';
import { readWorkerStats } from '../../core/stats.ts';
import { buildDashboard } from '../../dashboard/app.ts';
import { createLogger } from '../../core/logger.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let queues: Queues;
let server: Server;
let base: string;

interface BoardQueue {
  name: string;
  description?: string;
  hasWorkers: boolean | null;
}

beforeAll(async () => {
  // A CPU worker that takes the serving queues but not train or compress.
  p = await startPlatform({ workers: 1, env: { MODELQ_QUEUES: 'model,infer,batch,score' } });
  queues = new Queues(keyPrefix(p.cfg), p.redis);
  const app = buildDashboard({ queues, redis: p.redis, admin: false, logger: createLogger('dashboard', 'silent') });
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await queues?.close();
  await p?.stop();
});

const board = async () => {
  const res = await fetch(`${base}/queues/api/queues`);
  expect(res.status).toBe(200);
  return Object.fromEntries(((await res.json()).queues as BoardQueue[]).map((q) => [q.name, q]));
};

describe('queues without consumers', () => {
  it('GPU queues on a CPU-only platform read "no GPU workers started", not "No workers"; a queue no worker lists reads "not started"', async () => {
    await until(async () => (await board()).infer?.hasWorkers === true, 'the worker to be seen on infer');
    const q = await board();
    for (const gpu of ['infer-gpu', 'score-gpu']) {
      expect(q[gpu]!.description, gpu).toMatch(/^no GPU workers started: only workers with MODELQ_DEVICE=cuda take this queue/);
      expect(q[gpu]!.hasWorkers, gpu).toBeNull(); // not flagged as a queue without workers
    }
    for (const cpu of ['train', 'compress']) {
      expect(q[cpu]!.description, cpu).toMatch(/^not started: no running worker has this queue in its MODELQ_QUEUES/);
      expect(q[cpu]!.hasWorkers, cpu).toBeNull();
    }
    for (const served of ['infer', 'score', 'batch', 'model']) {
      expect(q[served]!.hasWorkers, served).toBe(true);
      expect(q[served]!.description, served).toBeUndefined();
    }

    const ui = await (await fetch(`${base}/ui/workers`)).json();
    expect(ui.queues.infer).toMatchObject({ consumers: 1 });
    expect(ui.queues.infer.notStarted).toBeUndefined();
    expect(ui.queues['infer-gpu']).toMatchObject({ consumers: 0, notStarted: expect.stringMatching(/^no GPU workers started/) });
    expect(ui.queues.train).toMatchObject({ consumers: 0, notStarted: expect.stringMatching(/^not started/) });
  });

  it('a queue whose workers are gone (none running at all) is still flagged as having none', async () => {
    const w = p.workers[0]!;
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    await until(async () => (await readWorkerStats(p.redis, keyPrefix(p.cfg))).length === 0, 'the worker figures to be gone');
    const q = await until(async () => {
      const b = await board();
      return b.infer?.hasWorkers === false ? b : null;
    }, 'infer to have no workers');
    expect(q.infer!.description).toBeUndefined();
    expect(q['infer-gpu']!.description).toMatch(/^no GPU workers started/);
    const ui = await (await fetch(`${base}/ui/workers`)).json();
    expect(ui.queues.infer).toEqual(expect.objectContaining({ consumers: 0 }));
    expect(ui.queues.infer.notStarted).toBeUndefined();
  });
});

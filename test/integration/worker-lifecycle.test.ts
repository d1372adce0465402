// The worker's main thread stays responsive while a slow model runs (onnxruntime lives in engine
// threads), and SIGTERM lets an active inference finish before the process exits 0.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { QueueEvents } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { keyPrefix, loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/logger.ts';
import { startWorker, type RunningWorker } from '../../workers/worker.ts';
import { directRun, rows, SLOW_FEATURES, slowMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform | undefined;
let w: RunningWorker | undefined;
afterEach(async () => {
  await w?.stop();
  await p?.stop();
  w = undefined;
  p = undefined;
});

const slow = slowMlp();
const N = 512;
const x = rows(N, SLOW_FEATURES, 5);
// Serialized once: stringifying it inside the measured window would block this thread itself.
const request = JSON.stringify({ inputs: [{ name: 'input', shape: [N, SLOW_FEATURES], datatype: 'FP32', data: Array.from(x) }] });

describe('worker main thread', () => {
  it('is never blocked for more than 50 ms while a slow model runs', async () => {
    p = await startPlatform();
    // The worker runs in this process so its main thread is the one measured here.
    w = await startWorker(loadConfig({ ...p.env, MODELQ_LOG_LEVEL: 'silent' }), createLogger('worker-test', 'silent'));
    expect((await uploadModel(p.url, 'slow', slow)).status).toBe(201);
    await postJson(`${p.url}/v2/models/slow/infer`, request); // warm: session created

    const h = monitorEventLoopDelay({ resolution: 5 });
    const before = { ...w.engine.stats };
    h.enable();
    const answers = await Promise.all(Array.from({ length: 4 }, () => postJson(`${p!.url}/v2/models/slow/infer`, request)));
    h.disable();
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    const runs = w.engine.stats.runs - before.runs;
    const computeMs = w.engine.stats.computeMs - before.computeMs;
    // A run took long enough that doing it on the main thread would have blocked it past the limit.
    expect(runs).toBeGreaterThan(0);
    expect(computeMs / runs).toBeGreaterThan(50);
    expect(h.max / 1e6).toBeLessThan(50);
  });
});

describe('SIGTERM', () => {
  it('finishes the active inference, then exits 0', async () => {
    p = await startPlatform();
    const worker = await p.addWorker({ MODELQ_SHUTDOWN_GRACE_MS: '60000' });
    expect((await uploadModel(p.url, 'slow', slow)).status).toBe(201);
    const events = new QueueEvents('infer', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
    await events.waitUntilReady();
    const active = new Promise<void>((r) => events.once('active', () => r()));
    const answer = postJson(`${p.url}/v2/models/slow/infer`, request);
    await active;
    worker.child.kill('SIGTERM');
    const res = await answer;
    expect(res.status).toBe(200);
    const body = await res.json();
    const expected = (await directRun(slow, { input: { data: x, dims: [N, SLOW_FEATURES] } })).output!;
    body.outputs[0].data.forEach((v: number, i: number) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-4));
    expect(await worker.exited).toBe(0);
    expect(worker.lines.some((l) => l.includes('"stopped"'))).toBe(true);
    const counts = await p.deps.queues.queue('infer').getJobCounts('completed', 'failed', 'active', 'waiting');
    expect(counts).toMatchObject({ completed: 1, failed: 0, active: 0, waiting: 0 });
    await events.close();
  });
});

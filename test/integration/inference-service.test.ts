// One inference service behind every door: REST (fast path and express), KServe :predict and gRPC
// requests for one model sent in the same window travel as one job and are computed in one engine
// run; ModelStreamInfer answers every request of a 10,000-message stream, in order, with at most
// MODELQ_GRPC_STREAM_WINDOW of them in flight. Both online transports (MODELQ_ONLINE_TRANSPORT):
// BullMQ jobs, and entries of raw bytes on a Redis Stream answered on the producer's channel.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { backpressureFor } from '../../producer/inference/backpressure.ts';
import { inferenceFor } from '../../producer/inference/service.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { directRun, rows, tinyMlp } from '../fixtures/models.ts';
import { DOORS, throughDoor } from '../helpers/doors.ts';
import { inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const WINDOW = 32;
let p: TestPlatform;
let server: RunningGrpcServer;
let c: InferenceClient;
const model = tinyMlp(5);

/** Engine counters of model m@1, summed over workers, from /metrics. */
async function counters(): Promise<{ runs: number; requests: number }> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const sum = (metric: string) =>
    [...text.matchAll(new RegExp(`^${metric}\\{worker="[^"]+",model="m@1"\\} (\\d+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
  return { runs: sum('modelq_engine_model_runs_total'), requests: sum('modelq_engine_model_requests_total') };
}

const F = 4;
const x = rows(DOORS.length, F, 11);
const rowOf = (i: number) => Array.from(x.subarray(i * F, (i + 1) * F));

describe.each(['bullmq', 'streams'])('one inference service (MODELQ_ONLINE_TRANSPORT=%s)', (transport) => {
  beforeAll(async () => {
    p = await startPlatform({ workers: 1, env: { MODELQ_GRPC_STREAM_WINDOW: String(WINDOW), MODELQ_ONLINE_TRANSPORT: transport } });
    server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
    c = inferenceClient(`127.0.0.1:${server.port}`);
    expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
  });
  afterAll(async () => {
    c?.close();
    await server?.close();
    await p?.stop();
  });

  it('coalesces REST, fast-path, :predict and gRPC requests of one window into one job and one engine run', async () => {
    // A window long enough that requests sent together from five doors meet in it.
    const put = await fetch(`${p.url}/v1/models/m/config`, {
      method: 'PUT',
      body: JSON.stringify({ maxBatch: 64, maxDelayMs: 1000, instances: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(put.status).toBe(200);
    const body = { inputs: [{ name: 'input', shape: [1, F], datatype: 'FP32', data: rowOf(0) }] };
    const expected = (await directRun(model, { input: { data: x, dims: [DOORS.length, F] } })).output!;
    const doors = () => Promise.all(DOORS.map((door, i) => throughDoor(door, { url: p.url, grpc: c, model: 'm', row: rowOf(i) })));
    // Every door once first (the session loads, the gRPC channel connects), so that in the round
    // below the doors' requests leave this process within moments of each other.
    expect((await doors()).map((o) => o.status)).toEqual(DOORS.map(() => 'ok'));
    let sent = DOORS.length;
    let last = Date.now();
    // A round can miss the window on a loaded machine (the doors' requests spread over more than
    // maxDelayMs); it is tried again, up to three times. Separate coalescers per door never pass.
    let jobs = 0;
    for (let round = 0; round < 3 && jobs !== 1; round++) {
      const base = await until(async () => {
        const n = await counters();
        return n.requests >= sent ? n : null;
      }, 'the requests so far counted');
      // A model idle for a window sends its next request alone at once (company is unlikely): this
      // one, sent once a window has passed since the last request, is answered at once, and the
      // doors' requests that come right after it find the model busy and wait for the window together.
      await new Promise((r) => setTimeout(r, Math.max(0, last + 1100 - Date.now())));
      expect((await postJson(`${p.url}/v2/models/m/infer`, body)).status).toBe(200);
      const jobsBefore = inferenceFor(p.deps).jobsSent;
      const outcomes = await doors();
      last = Date.now();
      sent += 1 + DOORS.length;
      expect(outcomes.map((o) => [o.door, o.status, o.message])).toEqual(DOORS.map((d) => [d, 'ok', '']));
      outcomes.forEach((o, i) => o.values!.forEach((v, j) => expect(v).toBeCloseTo(expected[i * 3 + j]!, 5)));
      jobs = inferenceFor(p.deps).jobsSent - jobsBefore;
      if (jobs !== 1) continue;
      const after = await until(async () => {
        const n = await counters();
        return n.requests >= sent ? n : null;
      }, 'the doors’ requests counted');
      // The leading request's run, and one run for the five doors' requests.
      expect(after.requests - base.requests).toBe(1 + DOORS.length);
      expect(after.runs - base.runs).toBe(2);
    }
    expect(jobs).toBe(1);
  });

  it('carries the requests on the chosen transport only', async () => {
    const body = { inputs: [{ name: 'input', shape: [1, F], datatype: 'FP32', data: rowOf(0) }] };
    expect((await postJson(`${p.url}/v2/models/m/infer`, body)).status).toBe(200);
    const jobs = await p.deps.queues.queue('infer').getJobCountByTypes('completed', 'failed', 'active', 'waiting', 'delayed');
    const added = await p.redis.xinfo('STREAM', `${p.deps.prefix}:online:infer`).then(
      (info) => Number((info as unknown[])[(info as unknown[]).indexOf('entries-added') + 1]),
      () => 0, // no stream: nothing was added
    );
    if (transport === 'streams') {
      expect(added).toBeGreaterThanOrEqual(inferenceFor(p.deps).jobsSent);
      expect(jobs).toBe(0);
    } else {
      expect(added).toBe(0);
      expect(jobs).toBeGreaterThan(0);
    }
  });

  it('ModelStreamInfer answers each of 10,000 requests, in order of ids, with at most the window outstanding', async () => {
    const put = await fetch(`${p.url}/v1/models/m/config`, {
      method: 'PUT',
      body: JSON.stringify({ maxBatch: 64, maxDelayMs: 2, instances: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(put.status).toBe(200);
    const N = 10_000;
    const data = rows(N, F, 12);
    const gate = backpressureFor(p.deps).gate;
    let most = 0;
    const watch = setInterval(() => (most = Math.max(most, gate.inFlight)), 1);
    const call = c.stream('ModelStreamInfer');
    const ids: string[] = [];
    const values = new Float32Array(N * 3);
    const errors: string[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on('data', (a) => {
        const i = ids.length;
        ids.push(a.infer_response.id);
        if (a.error_message) errors.push(a.error_message);
        else values.set(new Float32Array(new Uint8Array(a.infer_response.raw_output_contents[0]).buffer), i * 3);
      });
      call.on('end', resolve);
      call.on('error', reject);
    });
    // Written as fast as the stream takes them: the server's window is what bounds the work.
    for (let i = 0; i < N; i++) {
      const ok = call.write({
        model_name: 'm',
        id: String(i),
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, F] }],
        raw_input_contents: [Buffer.from(data.buffer, i * F * 4, F * 4)],
      });
      if (!ok) await new Promise((r) => call.once('drain', r));
    }
    call.end();
    await ended;
    clearInterval(watch);
    expect(errors).toEqual([]);
    expect(ids).toEqual(Array.from({ length: N }, (_, i) => String(i)));
    const expected = (await directRun(model, { input: { data, dims: [N, F] } })).output!;
    for (let i = 0; i < N * 3; i += 97) expect(values[i]).toBeCloseTo(expected[i]!, 5);
    expect(most).toBeGreaterThan(1); // requests of one stream are computed together...
    expect(most).toBeLessThanOrEqual(WINDOW); // ...never more of them than the window
    expect(gate.inFlight).toBe(0);
  });
});

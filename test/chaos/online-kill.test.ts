// A worker killed with SIGKILL in the middle of online load (REST, :predict, gRPC and a long
// ModelStreamInfer call at once): no request is lost. Each is answered with the values of a direct
// run, or refused with an error that says a retry may succeed; the dead worker's jobs are taken up by
// the other worker once their lock lapses (MODELQ_JOB_LOCK_MS), well within the request timeout.
// On both online transports: BullMQ jobs (found stalled), and Redis Stream entries (pending under
// the dead worker's consumer, taken up by another with XAUTOCLAIM).
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../core/auth.ts';
import { startGrpcServer } from '../../producer/grpc/server.ts';
import { directRun, rows, slowMlp } from '../fixtures/models.ts';
import { throughDoor, type Door, type Outcome } from '../helpers/doors.ts';
import { inferenceClient } from '../helpers/grpc-client.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import { F } from './helpers.ts';

const N = 1500; // requests through the unary doors
// A model whose runs take tens of milliseconds: a job is held long enough, even on a quiet machine,
// that a killed worker takes one with it.
const model = slowMlp();
const STREAMED = 400; // requests on one stream
const DOORS: Door[] = ['rest-fast', 'rest-express', 'predict', 'grpc'];
const OUT = 10; // slowMlp gives 10 values per row

type Transport = 'bullmq' | 'streams';

/** What each transport shows of the work a worker holds, and of that work being run again once it died. */
interface Watch {
  /** Pids of the worker processes that hold work now. */
  holders(): Promise<number[]>;
  /** Called once the victim is dead; resolves with the units of work it took along. */
  killed(pid: number): Promise<number>;
  /** Units of work the dead workers held (bullmq: found stalled and run again so far). */
  rerun(): number;
  /** Resolves once every unit the dead workers held has been taken up by a living worker. */
  settled(): Promise<void>;
}

function bullmqWatch(p: TestPlatform): Watch {
  let stalled = 0;
  let took = 0;
  p.deps.queues.queueEvents('infer').on('stalled', () => stalled++);
  const queue = p.deps.queues.queue('infer');
  /** The jobs each worker process held at the last look. */
  let held = new Map<number, string[]>();
  return {
    // Each job records the worker process that took it (processedBy, host:pid:tag).
    holders: async () => {
      held = new Map();
      for (const j of await queue.getActive()) {
        const pid = Number(j.processedBy?.split(':').at(-2));
        held.set(pid, [...(held.get(pid) ?? []), j.id!]);
      }
      return [...held.keys()];
    },
    // A job that finished between the look and the kill was not taken along; one still active once
    // its worker is dead was.
    killed: async (pid) => {
      let n = 0;
      for (const id of held.get(pid) ?? []) if ((await (await queue.getJob(id))?.getState()) === 'active') n++;
      took += n;
      return n;
    },
    rerun: () => stalled,
    // A stalled job is run again by the worker that found it; the stalled check (every lock period)
    // may come after the load has ended, so it is waited for.
    settled: () => (took > 0 ? until(() => stalled > 0, 'the dead worker’s job found stalled', 30_000).then(() => {}) : Promise.resolve()),
  };
}

function streamsWatch(p: TestPlatform): Watch {
  const key = `${p.deps.prefix}:online:infer`;
  let rerun = 0;
  const dead: number[] = [];
  /** Entries pending per consumer (consumer names are worker ids, host:pid:tag). */
  const pending = async () => {
    const summary = (await p.redis.xpending(key, 'workers')) as [number, string | null, string | null, [string, string][] | null];
    return (summary[3] ?? []).map(([name, n]) => ({ name, pid: Number(name.split(':').at(-2)), n: Number(n) }));
  };
  return {
    holders: async () => (await pending()).filter((c) => c.n > 0).map((c) => c.pid),
    // The dead consumer's entries stay in its pending list until another worker claims them (after
    // MODELQ_JOB_LOCK_MS idle, when that worker has a free slot: under load that may be after the
    // load ends); settled() waits for that.
    killed: async (pid) => {
      const held = (await pending()).find((c) => c.pid === pid)?.n ?? 0;
      if (held > 0) dead.push(pid);
      rerun += held;
      return held;
    },
    settled: () =>
      until(
        async () => {
          const left = await pending();
          return dead.every((pid) => (left.find((c) => c.pid === pid)?.n ?? 0) === 0);
        },
        'the dead workers’ entries taken up by a living worker',
        60_000,
      ).then(() => {}),
    rerun: () => rerun,
  };
}

describe.each(['bullmq', 'streams'] as Transport[])('chaos: a worker killed under online load (MODELQ_ONLINE_TRANSPORT=%s)', (transport) => {
  it('answers every request, or refuses it as retryable', async () => {
    // One job at a time per worker: once two are active, each worker holds one when the kill comes.
    const env = { MODELQ_JOB_LOCK_MS: '2000', MODELQ_INFER_TIMEOUT_MS: '30000', MODELQ_INFER_CONCURRENCY: '1', MODELQ_ONLINE_TRANSPORT: transport };
    const p = await startPlatform({ workers: 2, env });
    const server = await startGrpcServer(p.deps, { port: 0, host: '127.0.0.1', keys: KeyRing.fromConfig(p.cfg) });
    const c = inferenceClient(`127.0.0.1:${server.port}`);
    try {
      expect((await uploadModel(p.url, 'm', model)).status).toBe(201);
      // Work the dead worker held: found by the other worker and run again.
      const watch = transport === 'bullmq' ? bullmqWatch(p) : streamsWatch(p);
      const x = rows(N + STREAMED, F, 21);
      const expected = (await directRun(model, { input: { data: x, dims: [N + STREAMED, F] } })).output!;
      const rowOf = (i: number) => Array.from(x.subarray(i * F, (i + 1) * F));
      const expectRow = (i: number, values: ArrayLike<number>) => {
        for (let j = 0; j < OUT; j++) expect(values[j]).toBeCloseTo(expected[i * OUT + j]!, 3);
      };

      // The stream: every request written at once; the server's window paces it.
      const call = c.stream('ModelStreamInfer');
      const streamed: { id: string; error: string; retryable: boolean; values?: Float32Array }[] = [];
      const streamEnded = new Promise<void>((resolve, reject) => {
        call.on('data', (a) => {
          const r = a.infer_response;
          streamed.push({
            id: r.id,
            error: a.error_message ?? '',
            retryable: r.parameters?.retryable?.bool_param === true,
            ...(a.error_message ? {} : { values: new Float32Array(new Uint8Array(r.raw_output_contents[0]).buffer) }),
          });
        });
        call.on('end', resolve);
        call.on('error', reject);
      });
      for (let i = 0; i < STREAMED; i++)
        call.write({
          model_name: 'm',
          id: String(N + i),
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, F] }],
          raw_input_contents: [Buffer.from(new Float32Array(rowOf(N + i)).buffer)],
        });
      call.end();

      // The unary doors: 32 clients, each sending its share in turn.
      const outcomes: (Outcome & { i: number })[] = [];
      let next = 0;
      const client = async () => {
        for (let i = next++; i < N; i = next++)
          outcomes.push({ ...(await throughDoor(DOORS[i % DOORS.length]!, { url: p.url, grpc: c, model: 'm', row: rowOf(i) })), i });
      };
      const load = Promise.all(Array.from({ length: 32 }, client));

      await until(() => outcomes.length >= 50, 'the load under way', 60_000);
      // The worker that holds work is killed. A job may finish between the look and the kill, so
      // this is tried again (a replacement started each time) until a kill took work with it.
      const living = () => p.workers.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
      let kills = 0;
      let answeredAtKill = 0;
      const replacements: Promise<unknown>[] = [];
      while (watch.rerun() === 0 && kills < 8 && outcomes.length < N) {
        if (living().length < 2) await Promise.race(replacements);
        let victim: (typeof p.workers)[number] | undefined;
        await until(
          async () => {
            if (outcomes.length >= N) return true;
            const pids = await watch.holders();
            victim = living().find((w) => pids.includes(w.child.pid!));
            return victim !== undefined;
          },
          'a worker holding a job',
          60_000,
        );
        if (!victim) break;
        victim.child.kill('SIGKILL');
        await victim.exited;
        kills++;
        answeredAtKill = outcomes.length;
        replacements.push(p.addWorker(env));
        // The dead worker's work is taken up within two lock periods; a kill that took none is tried again.
        if ((await watch.killed(victim.child.pid!)) > 0)
          await until(() => watch.rerun() > 0 || outcomes.length >= N, 'the stalled check', 10_000).catch(() => {});
      }
      await load;
      await streamEnded;
      await watch.settled();
      await Promise.all(replacements);
      expect(answeredAtKill).toBeLessThan(N);
      expect(watch.rerun()).toBeGreaterThan(0); // the kill took work with it

      expect(outcomes).toHaveLength(N);
      for (const o of outcomes) {
        if (o.status === 'ok') expectRow(o.i, o.values!);
        else expect({ door: o.door, status: o.status, retryable: o.retryable, message: o.message }).toMatchObject({ retryable: true });
      }
      expect(streamed.map((s) => s.id)).toEqual(Array.from({ length: STREAMED }, (_, i) => String(N + i)));
      streamed.forEach((s, k) => {
        if (s.error) expect(s).toMatchObject({ retryable: true });
        else expectRow(N + k, s.values!);
      });
      const refused = outcomes.filter((o) => o.status !== 'ok').length + streamed.filter((s) => s.error).length;
      console.log(
        `chaos (${transport}): ${kills} worker kills, the last after ${answeredAtKill} answers; ${watch.rerun()} jobs run again; ${N + STREAMED - refused} answered, ${refused} refused as retryable`,
      );
    } finally {
      c.close();
      await server.close();
      await p.stop();
    }
  }, 180_000); // two worker starts and 1,900 requests of a slow model: minutes on a loaded 2-core machine
});

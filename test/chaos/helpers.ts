// Shared by the chaos tests: a batch to score, the check that its output has every row exactly
// once with the right values, and a private redis-server that can be killed and restarted.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { rows, tmpDir } from '../fixtures/models.ts';
import { expectExactOutput as expectOutput } from '../helpers/batch-output.ts';

export const F = 16;
export const model = buildMlp({ sizes: [F, 768, 768, 4], seed: 31 });

export function batchBody(n: number, seed = 3): { body: string; x: Float32Array } {
  const x = rows(n, F, seed);
  return { x, body: Array.from({ length: n }, (_, i) => JSON.stringify({ id: i, input: Array.from(x.subarray(i * F, (i + 1) * F)) })).join('\n') };
}

/** Every input row exactly once, in order, with the values of a direct onnxruntime run. */
export const expectExactOutput = (text: string, x: Float32Array, n: number) => expectOutput(text, model, x, n, F);

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** A redis-server of our own with AOF (fsync on every write), so it can be killed and restarted on the same files. */
export class PrivateRedis {
  child?: ChildProcess;
  readonly dir = tmpDir('modelq-redis');
  /** `args`: more redis-server options, e.g. ['--maxmemory', '16mb']. */
  constructor(
    readonly port: number,
    private readonly args: string[] = [],
  ) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start() {
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        ...this.args,
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      if (
        await new Promise((r) =>
          net
            .connect(this.port, '127.0.0.1')
            .on('connect', function (this: net.Socket) {
              this.destroy();
              r(true);
            })
            .on('error', () => r(false)),
        )
      )
        return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('redis-server did not start');
  }

  async kill() {
    const c = this.child!;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }

  async stop() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export { path };

/**
 * The random choices of a chaos test (when to kill, whom), from a seed printed at the start so a
 * failing run can be replayed: MODELQ_CHAOS_SEED=<seed> npx vitest run test/chaos/<file>.
 * Returns numbers in [0, 1) like Math.random (mulberry32).
 */
export function chaosRandom(test: string): () => number {
  const given = process.env.MODELQ_CHAOS_SEED;
  const seed = given !== undefined && given !== '' ? Number(given) >>> 0 : Math.floor(Math.random() * 2 ** 32);
  console.log(`${test}: chaos seed ${seed} (replay with MODELQ_CHAOS_SEED=${seed})`);
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

// Redis Cluster readiness: every key the platform writes during an upload, online inference and a
// batch hashes to one slot (the {prefix} tag), and the platform runs for real on a three-node
// cluster with MODELQ_REDIS_CLUSTER.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { Cluster, type Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows, tmpDir } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

const F = 5;
const model = buildMlp({ sizes: [F, 8, 2], seed: 41 });

/** Register, infer, score a small batch: the flows that write keys. */
async function exercise(p: TestPlatform): Promise<void> {
  expect((await uploadModel(p.url, 'slots', model)).status).toBe(201);
  const x = rows(3, F, 2);
  const res = await postJson(`${p.url}/v2/models/slots/infer`, { inputs: [{ name: 'input', shape: [3, F], datatype: 'FP32', data: Array.from(x) }] });
  expect(res.status).toBe(200);
  const want = (await directRun(model, { input: { data: x, dims: [3, F] } })).output!;
  ((await res.json()).outputs[0].data as number[]).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
  const n = 400;
  const bx = rows(n, F, 3);
  const body = Array.from({ length: n }, (_, i) => JSON.stringify({ input: Array.from(bx.subarray(i * F, (i + 1) * F)) })).join('\n');
  const { id } = await (await fetch(`${p.url}/v1/batches?model=slots&chunkRows=100`, { method: 'POST', body })).json();
  const done = await until(
    async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    'the batch to end',
    60_000,
  );
  expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
  expect((await (await fetch(`${p.url}/v1/batches/${id}/output`)).text()).trim().split('\n')).toHaveLength(n);
}

async function scanAll(redis: Redis, match: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

describe('cluster-ready keys', () => {
  it('every key written by an upload, an inference and a batch is in the one slot of {prefix}', async () => {
    const p = await startPlatform({ workers: 1 });
    try {
      await exercise(p);
      const prefix = keyPrefix(p.cfg);
      // Anything naming this run's prefix, hash-tagged or not (a key built without the braces would show here).
      const keys = await scanAll(p.redis, `*${p.cfg.MODELQ_PREFIX}*`);
      expect(keys.length).toBeGreaterThan(20);
      const slot = calculateSlot(prefix);
      const strays = keys.filter((k) => !k.startsWith(prefix) || calculateSlot(k) !== slot);
      expect(strays).toEqual([]);
      // Queues, jobs, registry, batches, worker figures: all of them were there.
      for (const part of [':model:', ':infer:', ':score:', ':batch:'])
        expect(
          keys.some((k) => k.includes(part)),
          part,
        ).toBe(true);
    } finally {
      await p.stop();
    }
  });

  it('runs on a three-node Redis Cluster with MODELQ_REDIS_CLUSTER, every key on one node', async () => {
    const cluster = await startCluster(3);
    let p: TestPlatform | undefined;
    let client: Cluster | undefined;
    try {
      p = await startPlatform({ workers: 1, env: { MODELQ_REDIS_CLUSTER: cluster.seeds } });
      await exercise(p);
      client = new Cluster(cluster.nodes);
      await new Promise<void>((r) => client!.once('ready', () => r()));
      const perNode = await Promise.all(client.nodes('master').map((n) => scanAll(n, `*${p!.cfg.MODELQ_PREFIX}*`)));
      const withKeys = perNode.filter((k) => k.length > 0);
      expect(withKeys).toHaveLength(1);
      expect(withKeys[0]!.length).toBeGreaterThan(20);
    } finally {
      client?.disconnect();
      await p?.stop();
      await cluster.stop();
    }
  });
});

/** A port whose cluster bus port (+10000) is free too. */
async function freeClusterPort(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((r) => {
      const s = net
        .createServer()
        .once('error', () => r(false))
        .listen(port, '127.0.0.1', () => s.close(() => r(true)));
    });
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    if ((await free(port)) && (await free(port + 10000))) return port;
  }
}

/** Redis Cluster of `n` masters on loopback, no replicas, files in a temp dir. */
async function startCluster(n: number): Promise<{ seeds: string; nodes: { host: string; port: number }[]; stop(): Promise<void> }> {
  const dir = tmpDir('modelq-cluster');
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(
      children.map((c) =>
        c.exitCode === null && c.signalCode === null
          ? new Promise((r) => {
              c.once('exit', r);
              c.kill('SIGKILL');
            })
          : Promise.resolve(),
      ),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < n; i++) {
      const port = await freeClusterPort();
      ports.push(port);
      children.push(
        spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--dir',
            dir,
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--save',
            '',
            '--appendonly',
            'no',
            '--maxmemory-policy',
            'noeviction',
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    for (const port of ports) await until(() => ping(port), `redis-server on ${port}`, 10_000);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    await until(
      () => ports.every((port) => /cluster_state:ok/.test(spawnSync('redis-cli', ['-p', String(port), 'cluster', 'info'], { encoding: 'utf8' }).stdout)),
      'cluster_state:ok',
      20_000,
    );
  } catch (e) {
    await stop();
    throw e;
  }
  return { seeds: ports.map((p) => `127.0.0.1:${p}`).join(','), nodes: ports.map((port) => ({ host: '127.0.0.1', port })), stop };
}

function ping(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net
      .connect(port, '127.0.0.1')
      .once('connect', () => {
        s.destroy();
        r(true);
      })
      .once('error', () => r(false));
  });
}

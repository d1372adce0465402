// Verified erasure and retention (issue 33 item 4), on real Redis, the filesystem store, real
// training and compression: every Redis key under the test's prefix (with its contents) and every
// store object is listed before and after. Erasing a dataset with cascade removes it, the two models
// trained from it and the compressed child of one, with nothing of them left anywhere (an unrelated
// dataset and model survive whole), and the audit stream records it. A retention rule of 0 days
// erases an expired batch, its input and outputs, on the retention job's next run.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import type { VersionRecord } from '../../core/registry.ts';
import { decodeLogPart, encodeLogPart, listLogParts, logPartKey, type PayloadRecord } from '../../core/payload-logs.ts';
import { postJson, startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  // A retention "day" of a second, swept every second: a rule of 0 days expires at once.
  p = await startPlatform({ workers: 1, env: { MODELQ_RETENTION_DAY_MS: '1000', MODELQ_RETENTION_INTERVAL_MS: '1000' } });
});
afterAll(async () => {
  await p?.stop();
});

function csv(n: number, seed: number): string {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const lines = ['a,b,label'];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    lines.push(`${(c + rnd()).toFixed(3)},${(c * 0.5 + rnd()).toFixed(3)},${['red', 'green', 'blue'][c]}`);
  }
  return `${lines.join('\n')}\n`;
}

async function uploadDataset(name: string, seed: number): Promise<string> {
  const res = await fetch(`${p.url}/v1/datasets?format=csv&name=${name}`, { method: 'POST', body: csv(240, seed), headers: { 'content-type': 'text/csv' } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function runJob(path: string, body: object): Promise<{ id: string; result: { model: { name: string; version: number } } }> {
  const res = await postJson(`${p.url}${path}`, body);
  const accepted = (await res.json()) as { id: string };
  expect(res.status, JSON.stringify(accepted)).toBe(202);
  const job = await until(
    async () => {
      const j = (await (await fetch(`${p.url}/v1/jobs/${accepted.id}`)).json()) as { state: string; error?: unknown };
      return ['completed', 'failed'].includes(j.state) ? j : null;
    },
    `job ${accepted.id}`,
    240_000,
  );
  expect(job.state, JSON.stringify(job.error)).toBe('completed');
  return { id: accepted.id, ...(job as unknown as { result: { model: { name: string; version: number } } }) };
}

const train = (dataset: string, registerAs: string) => runJob('/v1/jobs/train', { dataset, target: 'label', registerAs, seed: 1, model: { type: 'linear' } });

/** Every key under the platform's prefix with its contents as text (streams, hashes, sets and lists read whole). */
async function redisDump(redis: Redis, prefix: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const type = await redis.type(k);
      let v: unknown;
      if (type === 'string') v = await redis.get(k);
      else if (type === 'hash') v = await redis.hgetall(k);
      else if (type === 'zset') v = await redis.zrange(k, 0, -1, 'WITHSCORES');
      else if (type === 'set') v = await redis.smembers(k);
      else if (type === 'list') v = await redis.lrange(k, 0, -1);
      else if (type === 'stream') v = await redis.xrange(k, '-', '+');
      else continue; // gone meanwhile
      out.set(k, JSON.stringify(v));
    }
  } while (cursor !== '0');
  return out;
}

const storeKeys = async () => (await p.deps.store.list('', 1_000_000)).map((o) => o.key).sort();

/** Where any of `needles` still appears: in a key's name or contents (the audit stream aside), or a store object's key. */
async function traces(needles: string[]): Promise<string[]> {
  const prefix = keyPrefix(p.cfg);
  const found: string[] = [];
  for (const [k, v] of await redisDump(p.redis, prefix)) {
    if (k === `${prefix}:records:audit`) continue;
    for (const n of needles) if (k.includes(n) || v.includes(n)) found.push(`redis ${k} holds ${n}`);
  }
  for (const k of await storeKeys()) for (const n of needles) if (k.includes(n)) found.push(`object ${k} holds ${n}`);
  return found;
}

const version = async (name: string, v: number) => (await (await fetch(`${p.url}/v1/models/${name}/versions/${v}`)).json()) as VersionRecord;

describe('erasure', () => {
  it('a dataset erased with cascade takes its two models and the compressed child along, leaving nothing of them in Redis or the store', async () => {
    // The unrelated dataset and model, and what exists before the erased ones.
    const kept = await uploadDataset('kept', 5);
    const keptJob = await train(kept, 'kept');
    const keptVersion = await version('kept', 1);
    const redisBefore = await redisDump(p.redis, keyPrefix(p.cfg));
    const objectsBefore = await storeKeys();

    const ds = await uploadDataset('erasable', 9);
    const a = await train(ds, 'era-a');
    const b = await train(ds, 'era-b');
    const c = await runJob('/v1/jobs/compress', { model: 'era-a@1', method: 'fp16', registerAs: 'era-a-fp16', allowSlower: true });
    const versions = [await version('era-a', 1), await version('era-b', 1), await version('era-a-fp16', 1)];
    expect(versions[2]!.lineage).toMatchObject({ parent: { name: 'era-a', version: 1 } });
    const needles = [ds, 'era-a', 'era-b', a.id, b.id, c.id, ...versions.map((v) => v.sha256)];
    // They are there before: in Redis and the store.
    expect((await traces(needles)).length).toBeGreaterThan(10);
    expect((await storeKeys()).filter((k) => k.startsWith(`datasets/${ds}/`)).length).toBe(1);

    const deps = await (await fetch(`${p.url}/v1/datasets/${ds}/dependents`)).json();
    expect(deps.dependents).toEqual(
      expect.arrayContaining([
        { name: 'era-a', version: 1, relation: 'trained' },
        { name: 'era-b', version: 1, relation: 'trained' },
        expect.objectContaining({ name: 'era-a-fp16', version: 1 }),
      ]),
    );
    expect(deps.dependents).toHaveLength(3);
    expect((await (await fetch(`${p.url}/v1/datasets/${kept}/dependents`)).json()).dependents).toEqual([{ name: 'kept', version: 1, relation: 'trained' }]);

    // Without cascade: a 409 naming the dependents, and nothing erased.
    const refused = await fetch(`${p.url}/v1/datasets/${ds}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    const err = (await refused.json()) as { error: { code: string; message: string } };
    expect(err.error.message).toContain('era-a@1');
    expect(err.error.message).toContain('era-a-fp16@1');
    expect((await fetch(`${p.url}/v1/datasets/${ds}`)).status).toBe(200);
    expect((await fetch(`${p.url}/v1/datasets/${ds}?cascade=yes`, { method: 'DELETE' })).status).toBe(400);

    const res = await fetch(`${p.url}/v1/datasets/${ds}?cascade=true`, { method: 'DELETE' });
    const report = (await res.json()) as {
      erased: { kind: string; id: string }[];
      objects: string[];
      redisKeys: string[];
      jobs: string[];
      workerCaches: string[];
      counts: { objects: number; redisKeys: number; jobs: number };
    };
    expect(res.status, JSON.stringify(report)).toBe(200);
    expect(report.erased).toEqual(
      expect.arrayContaining([
        { kind: 'dataset', id: ds },
        { kind: 'model-version', id: 'era-a@1' },
        { kind: 'model-version', id: 'era-b@1' },
        { kind: 'model-version', id: 'era-a-fp16@1' },
      ]),
    );
    expect(report.erased).toHaveLength(4);
    expect(report.objects).toEqual(expect.arrayContaining([`datasets/${ds}/data.csv`, ...versions.map((v) => `models/sha256/${v.sha256}.onnx`)]));
    expect(report.jobs).toEqual(expect.arrayContaining([`train:${a.id}`, `train:${b.id}`, `compress:${c.id}`]));
    // Versions with the same bytes (the same data, seed and fit) share one file: announced once, when the last goes.
    expect(report.workerCaches.sort()).toEqual([...new Set(versions.map((v) => v.sha256))].sort());
    expect(report.counts.objects).toBe(report.objects.length);

    // Nothing of them anywhere: the worker's published figures drop the sessions it held once it acts on the message.
    expect(await until(async () => ((await traces(needles)).length === 0 ? true : null), 'no trace of the erased items', 30_000)).toBe(true);
    for (const n of ['era-a', 'era-b', 'era-a-fp16']) expect((await fetch(`${p.url}/v1/models/${n}`)).status).toBe(404);
    expect((await fetch(`${p.url}/v1/datasets/${ds}`)).status).toBe(404);
    expect((await fetch(`${p.url}/v1/jobs/${a.id}`)).status).toBe(404);

    // The unrelated items survive whole: every store object from before is there, and every Redis key that named them.
    const objectsAfter = await storeKeys();
    for (const k of objectsBefore) expect(objectsAfter).toContain(k);
    expect(objectsAfter.filter((k) => !objectsBefore.includes(k))).toEqual([]);
    const redisAfter = await redisDump(p.redis, keyPrefix(p.cfg));
    for (const [k, v] of redisBefore) if (k.includes('kept') || v.includes(kept)) expect(redisAfter.has(k), k).toBe(true);
    expect(await version('kept', 1)).toEqual(keptVersion);
    expect((await fetch(`${p.url}/v1/jobs/${keptJob.id}`)).status).toBe(200);
    const pred = await postJson(`${p.url}/v1/models/kept:predict`, { instances: [{ a: 1, b: 0.5 }] });
    expect(pred.status).toBe(200);

    // The audit stream records the request and each erased item.
    const audit = (await (await fetch(`${p.url}/v1/audit?action=ERASE&limit=100`)).json()) as { entries: { action: string; target: string }[] };
    expect(audit.entries.map((e) => `${e.action} ${e.target}`)).toEqual(
      expect.arrayContaining([
        'ERASE dataset /v1/datasets/' + ds,
        'ERASE model-version /v1/models/era-a/versions/1',
        'ERASE model-version /v1/models/era-b/versions/1',
        'ERASE model-version /v1/models/era-a-fp16/versions/1',
      ]),
    );
    const deletes = (await (await fetch(`${p.url}/v1/audit?action=DELETE&limit=100`)).json()) as { entries: { target: string; status: number }[] };
    expect(deletes.entries.some((e) => e.target.startsWith(`/v1/datasets/${ds}`) && e.status === 200)).toBe(true);
  }, 900_000);

  it('a single version erased: the model keeps its other versions, `latest` moves back, and a new version gets a fresh number', async () => {
    const ds = await uploadDataset('versions', 11);
    await train(ds, 'multi');
    await runJob('/v1/jobs/compress', { model: 'multi@1', method: 'fp16', registerAs: 'multi', allowSlower: true });
    const v2 = await version('multi', 2);
    const res = await fetch(`${p.url}/v1/models/multi/versions/2`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    const model = (await (await fetch(`${p.url}/v1/models/multi`)).json()) as { versions: { version: number }[]; aliases: Record<string, number> };
    expect(model.versions.map((v) => v.version)).toEqual([1]);
    expect(model.aliases.latest).toBe(1);
    expect(await p.deps.store.stat(`models/sha256/${v2.sha256}.onnx`)).toBeNull();
    // Version numbers are never given twice.
    await runJob('/v1/jobs/compress', { model: 'multi@1', method: 'fp16', registerAs: 'multi', allowSlower: true });
    expect((await version('multi', 3)).lineage).toMatchObject({ parent: { name: 'multi', version: 1 } });
    expect((await fetch(`${p.url}/v1/models/multi/versions/2`)).status).toBe(404);
    expect((await fetch(`${p.url}/v1/models/multi/versions/x`, { method: 'DELETE' })).status).toBe(400);
    expect((await fetch(`${p.url}/v1/models/multi/versions/9`, { method: 'DELETE' })).status).toBe(404);
  }, 600_000);

  it('erases payload-log records in a range: parts inside it go, a part across an end keeps its other records', async () => {
    const rec = (model: string, iso: string, n: number): PayloadRecord => ({
      request_id: `${model}-${iso}-${n}`,
      client_id: null,
      time: Date.parse(iso),
      tenant: 'default',
      key_id: '-',
      model,
      version: 1,
      alias: null,
      latency_ms: 1,
      inputs: '[]',
      outputs: '[]',
      error: null,
      truncated: false,
    });
    const put = async (records: PayloadRecord[]) => {
      const times = records.map((r) => r.time);
      const key = logPartKey('default', records[0]!.model, 1, Math.min(...times), Math.max(...times));
      await p.deps.store.put(key, encodeLogPart(records));
      return key;
    };
    const before = await put([rec('kept', '2026-12-01T10:10:00Z', 0)]);
    const across = await put([rec('kept', '2026-12-01T10:20:00Z', 1), rec('kept', '2026-12-01T10:40:00Z', 2)]);
    const inside = await put([rec('kept', '2026-12-01T11:15:00Z', 3), rec('kept', '2026-12-01T11:45:00Z', 4)]);
    const other = await put([rec('other', '2026-12-01T11:15:00Z', 5)]);
    const res = await fetch(`${p.url}/v1/models/kept/logs?from=2026-12-01T10:30:00Z&to=2026-12-01T12:00:00Z`, { method: 'DELETE' });
    const report = (await res.json()) as { objects: string[] };
    expect(res.status, JSON.stringify(report)).toBe(200);
    expect(report.objects.sort()).toEqual([across, inside].sort());
    expect(await p.deps.store.stat(before)).not.toBeNull();
    expect(await p.deps.store.stat(other)).not.toBeNull();
    // The part across the range's start is written again with only its record before 10:30.
    const left = (await listLogParts(p.deps.store, { tenant: 'default', model: 'kept' })).map((x) => x.key);
    expect(left).toHaveLength(2);
    expect(left).toContain(before);
    const rewritten = left.find((k) => k !== before)!;
    const kept = await decodeLogPart(await p.deps.store.get(rewritten));
    expect(kept.map((r) => r.request_id)).toEqual(['kept-2026-12-01T10:20:00Z-1']);
    expect((await fetch(`${p.url}/v1/models/kept/logs?from=tomorrow&to=1`, { method: 'DELETE' })).status).toBe(400);
    expect((await fetch(`${p.url}/v1/models/kept/logs?from=5&to=1`, { method: 'DELETE' })).status).toBe(400);
  });
});

describe('retention', () => {
  it('a rule of 0 days erases an expired batch and its outputs on the next run of the retention job', async () => {
    const body = 'a,b\n0.1,0.2\n1.1,0.7\n2.0,1.2\n';
    const res = await fetch(`${p.url}/v1/batches?model=kept&format=csv`, { method: 'POST', body, headers: { 'content-type': 'text/csv' } });
    const accepted = (await res.json()) as { id: string };
    expect(res.status, JSON.stringify(accepted)).toBe(202);
    const done = await until(
      async () => {
        const v = (await (await fetch(`${p.url}/v1/batches/${accepted.id}`)).json()) as { status: string };
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      'batch to end',
      120_000,
    );
    expect(done.status).toBe('completed');
    expect((await storeKeys()).filter((k) => k.startsWith(`batches/${accepted.id}/out/`)).length).toBeGreaterThan(0);

    expect((await fetch(`${p.url}/v1/tenants/default/retention`)).status).toBe(404);
    expect(
      (await fetch(`${p.url}/v1/tenants/default/retention`, { method: 'PUT', body: '{"batches": -1}', headers: { 'content-type': 'application/json' } }))
        .status,
    ).toBe(400);
    const put = await fetch(`${p.url}/v1/tenants/default/retention`, {
      method: 'PUT',
      body: JSON.stringify({ batches: 0 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(put.status).toBe(200);
    expect(await (await fetch(`${p.url}/v1/tenants/default/retention`)).json()).toEqual({ tenant: 'default', batches: 0 });

    await until(async () => ((await fetch(`${p.url}/v1/batches/${accepted.id}`)).status === 404 ? true : null), 'the retention job to erase the batch', 60_000);
    expect(await traces([accepted.id])).toEqual([]);
    const audit = (await (await fetch(`${p.url}/v1/audit?action=ERASE%20batch&limit=10`)).json()) as { entries: { target: string; keyId: string | null }[] };
    expect(audit.entries).toEqual([expect.objectContaining({ target: `/v1/batches/${accepted.id}`, keyId: 'retention' })]);
    // The unrelated model is untouched by a batch rule.
    expect((await fetch(`${p.url}/v1/models/kept`)).status).toBe(200);
    expect((await fetch(`${p.url}/v1/tenants/default/retention`, { method: 'DELETE' })).status).toBe(204);
  }, 300_000);
});

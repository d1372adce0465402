// Each Lua script in core/lua/ on the real Redis (keys under this file's own random prefix): what
// it does, including the refusals, and how it is sent: includes expanded, by SHA after the first
// call on a client (EVALSHA; EVAL only when the server did not know it).
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeysWithPrefix } from '../../core/redis.ts';
import { expandLua, LUA, runLua } from '../../core/lua/scripts.ts';

const prefix = `t-lua-${Math.random().toString(36).slice(2, 10)}`;
let redis: Redis;
const sent: string[] = [];
beforeAll(() => {
  redis = new Redis(process.env.MODELQ_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((cmd: { name: string }, ...rest: unknown[]) => {
    sent.push(cmd.name);
    return (send as (...a: unknown[]) => unknown)(cmd, ...rest);
  }) as typeof redis.sendCommand;
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});
const k = (s: string) => `${prefix}:${s}`;

describe('Lua scripts as files', () => {
  it('expands includes once, and names each script by the SHA1 of what Redis runs', () => {
    for (const s of Object.values(LUA)) {
      expect(s.source).not.toMatch(/--!include/);
      expect(s.sha).toBe(createHash('sha1').update(s.source).digest('hex'));
    }
    expect(LUA.statusTransition.source.match(/local function allowed_status/g)).toHaveLength(1);
    expect(expandLua('status-transition.lua', new Set(['status-guard.lua']))).toMatch(/-- \(status-guard\.lua already included\)/);
  });

  it('sends a script by SHA: once Redis has it, only EVALSHA', async () => {
    await redis.hset(k('sha'), 'status', 'queued');
    sent.length = 0;
    await runLua(redis, LUA.statusTransition, [k('sha')], ['running', 't0', '', '', 'queued']);
    expect(sent[0]).toBe('evalsha');
    expect(sent.every((c) => c === 'evalsha' || c === 'eval')).toBe(true);
    expect(await redis.script('EXISTS', LUA.statusTransition.sha)).toEqual([1]);
    sent.length = 0;
    await runLua(redis, LUA.statusTransition, [k('sha')], ['finalizing', 't1', '', '', 'running']);
    expect(sent).toEqual(['evalsha']);
    await expect(runLua(redis, LUA.statusTransition, [], [])).rejects.toThrow(/takes 1 keys, not 0/);
  });

  it('status-transition: moves only from an allowed status, stamping a field the first time and another every time', async () => {
    const key = k('batch:a');
    const move = (to: string, t: string, from: string[]) =>
      runLua(redis, LUA.statusTransition, [key], [to, t, to === 'running' ? 'startedAt' : '', to === 'completed' ? 'completedAt' : '', ...from]);
    expect(await move('running', 't1', ['queued'])).toBeNull(); // no record
    await redis.hset(key, 'status', 'queued');
    expect(await move('completed', 't1', ['running'])).toBeNull(); // not allowed
    expect(await redis.hget(key, 'status')).toBe('queued');
    expect(await move('running', 't1', ['queued', 'running'])).toBe('queued');
    expect(await move('running', 't2', ['queued', 'running'])).toBe('running');
    expect(await redis.hget(key, 'startedAt')).toBe('t1'); // first time only
    expect(await redis.hget(key, 'completedAt')).toBeNull();
    expect(await move('completed', 't3', ['running'])).toBe('running');
    expect(await move('completed', 't4', ['completed'])).toBe('completed');
    expect(await redis.hgetall(key)).toEqual({ status: 'completed', startedAt: 't1', completedAt: 't4' }); // every time
  });

  it('batch-fail: fails a batch under way with its reason; an ended one stays as it was', async () => {
    const key = k('batch:f');
    await redis.hset(key, 'status', 'running');
    expect(await runLua(redis, LUA.batchFail, [key], ['t1', 'boom'])).toBe('running');
    expect(await redis.hgetall(key)).toEqual({ status: 'failed', completedAt: 't1', error: 'boom' });
    await redis.hset(key, { status: 'completed', error: '' });
    expect(await runLua(redis, LUA.batchFail, [key], ['t2', 'late'])).toBeNull();
    expect(await redis.hget(key, 'status')).toBe('completed');
  });

  it('registry-create-version: numbers versions, returns the version of known bytes, records and enforces the owner, announces', async () => {
    const keys = ['versions', 'sha', 'aliases', 'models', 'meta', 'signatures'].map((s) => k(`m:${s}`));
    const channel = k('events');
    const sub = redis.duplicate();
    const heard: string[] = [];
    await sub.subscribe(channel);
    sub.on('message', (_c, m) => heard.push(m));
    const create = (sha: string, tenant: string, platform = '0') =>
      runLua(redis, LUA.registryCreateVersion, keys, [sha, `{"sha":"${sha}"}`, 5, 'm', tenant, platform, '0', channel, 42, sha === 'aa' ? '{"sig":"s"}' : '']);
    try {
      expect(await create('aa', 'acme')).toEqual([1, 1]);
      expect(await create('bb', 'acme')).toEqual([2, 1]);
      expect(await create('aa', 'acme')).toEqual([1, 0]); // same bytes: the existing version
      expect(await create('cc', 'other')).toEqual([0, -1]); // not the owner
      expect(await create('cc', 'other', '1')).toEqual([3, 1]); // a platform operator may
      expect(await redis.hgetall(keys[4]!)).toEqual({ owner: 'acme', shared: '0', seq: '3' });
      expect(await redis.hget(keys[2]!, 'latest')).toBe('3');
      expect(await redis.zrange(keys[3]!, 0, -1)).toEqual(['m']);
      // the platform's signature is recorded by sha256, for the versions that carry one
      const signatures = await redis.hgetall(keys[5]!);
      expect(Object.keys(signatures)).toEqual(['aa']);
      expect(JSON.parse(signatures.aa!)).toEqual({ name: 'm', version: 1, signature: { sig: 's' } });
      await new Promise<void>((r) => (heard.length >= 3 ? r() : sub.on('message', () => heard.length >= 3 && r())));
      expect(heard.map((m) => JSON.parse(m))).toEqual([1, 2, 3].map((v, i) => ({ name: 'm', version: v, sha256: ['aa', 'bb', 'cc'][i], bytes: 42 })));
      // Numbered by the meta's counter: a version removed (erased) leaves its number unused.
      await redis.hdel(keys[0]!, '3');
      expect(await create('dd', 'acme')).toEqual([4, 1]);
    } finally {
      sub.disconnect();
    }
  });

  it('drift-add-counts: adds counts to the current generation and turns it into the previous one at W/2 rows', async () => {
    const [cur, prev, versions] = [k('d:cur'), k('d:prev'), k('d:versions')];
    expect(await runLua(redis, LUA.driftAddCounts, [cur, prev, versions], [10, 6, 'm@1', 'x:0', 4, 'x:1', 2])).toBe(6);
    expect(await redis.hgetall(cur)).toEqual({ 'x:0': '4', 'x:1': '2', n: '6' });
    expect(await runLua(redis, LUA.driftAddCounts, [cur, prev, versions], [10, 4, 'm@1', 'x:0', 4])).toBe(10);
    expect(await redis.exists(cur)).toBe(0);
    expect(await redis.hgetall(prev)).toEqual({ 'x:0': '8', 'x:1': '2', n: '10' });
    expect(await redis.smembers(versions)).toEqual(['m@1']);
  });

  it('drift-add-reference-rows: keeps the first N rows, with an expiry', async () => {
    const key = k('ref:rows');
    expect(await runLua(redis, LUA.driftAddReferenceRows, [key], [3, 'a', 'b'])).toBe(2);
    expect(await runLua(redis, LUA.driftAddReferenceRows, [key], [3, 'c', 'd', 'e'])).toBe(3);
    expect(await redis.lrange(key, 0, -1)).toEqual(['a', 'b', 'c']);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(86_400_000);
  });

  it('rollout-save: writes only on the expected revision, with its audit record, and frees the alias on a final state', async () => {
    const [rec, audit, active] = ['ro', 'ro:audit', 'active'].map(k);
    const save = (rev: number, body: object, a: string, final: boolean) =>
      runLua(redis, LUA.rolloutSave, [rec!, audit!, active!], [rev, JSON.stringify(body), a, final ? '1' : '0', 'r1']);
    await redis.set(active!, 'r1');
    expect(await save(0, { rev: 1 }, 'start', false)).toBe(1); // no record yet
    expect(await save(0, { rev: 1, late: true }, 'stale', false)).toBe(0); // the stored record moved on
    expect(await save(1, { rev: 2 }, '', false)).toBe(1);
    expect(await redis.get(active!)).toBe('r1');
    expect(await save(2, { rev: 3, status: 'completed' }, 'done', true)).toBe(1);
    expect(JSON.parse((await redis.get(rec!))!)).toEqual({ rev: 3, status: 'completed' });
    expect(await redis.lrange(audit!, 0, -1)).toEqual(['start', 'done']);
    expect(await redis.get(active!)).toBeNull();
  });
});

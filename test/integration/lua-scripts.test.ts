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
    for (const s of [LUA.batchTransition, LUA.openaiBatchTransition]) expect(s.source.match(/local function allowed_status/g)).toHaveLength(1);
    expect(expandLua('batch-transition.lua', new Set(['status-guard.lua']))).toMatch(/-- \(status-guard\.lua already included\)/);
  });

  it('sends a script by SHA: once Redis has it, only EVALSHA', async () => {
    await redis.hset(k('sha'), 'status', 'queued');
    sent.length = 0;
    await runLua(redis, LUA.batchTransition, [k('sha')], ['running', 't0', 'queued']);
    expect(sent[0]).toBe('evalsha');
    expect(sent.every((c) => c === 'evalsha' || c === 'eval')).toBe(true);
    expect(await redis.script('EXISTS', LUA.batchTransition.sha)).toEqual([1]);
    sent.length = 0;
    await runLua(redis, LUA.batchTransition, [k('sha')], ['finalizing', 't1', 'running']);
    expect(sent).toEqual(['evalsha']);
    await expect(runLua(redis, LUA.batchTransition, [], [])).rejects.toThrow(/takes 1 keys, not 0/);
  });

  it('batch-transition: moves only from an allowed status, stamping startedAt once and completedAt at the end', async () => {
    const key = k('batch:a');
    expect(await runLua(redis, LUA.batchTransition, [key], ['running', 't1', 'queued'])).toBeNull(); // no record
    await redis.hset(key, 'status', 'queued');
    expect(await runLua(redis, LUA.batchTransition, [key], ['completed', 't1', 'running'])).toBeNull(); // not allowed
    expect(await redis.hget(key, 'status')).toBe('queued');
    expect(await runLua(redis, LUA.batchTransition, [key], ['running', 't1', 'queued', 'running'])).toBe('queued');
    expect(await runLua(redis, LUA.batchTransition, [key], ['running', 't2', 'queued', 'running'])).toBe('running');
    expect(await redis.hget(key, 'startedAt')).toBe('t1');
    expect(await redis.hget(key, 'completedAt')).toBeNull();
    expect(await runLua(redis, LUA.batchTransition, [key], ['completed', 't3', 'running'])).toBe('running');
    expect(await redis.hgetall(key)).toEqual({ status: 'completed', startedAt: 't1', completedAt: 't3' });
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

  it('openai-batch-transition: moves only from an allowed status and keeps the first time of each status', async () => {
    const key = k('openai:b');
    expect(await runLua(redis, LUA.openaiBatchTransition, [key], ['in_progress', 100, 'validating'])).toBeNull();
    await redis.hset(key, 'status', 'validating');
    expect(await runLua(redis, LUA.openaiBatchTransition, [key], ['completed', 100, 'in_progress'])).toBeNull();
    expect(await runLua(redis, LUA.openaiBatchTransition, [key], ['in_progress', 100, 'validating'])).toBe('validating');
    expect(await runLua(redis, LUA.openaiBatchTransition, [key], ['in_progress', 200, 'in_progress'])).toBe('in_progress');
    expect(await redis.hgetall(key)).toEqual({ status: 'in_progress', in_progress_at: '100' });
  });

  it('registry-create-version: numbers versions, returns the version of known bytes, records and enforces the owner, announces', async () => {
    const keys = ['versions', 'sha', 'aliases', 'models', 'meta'].map((s) => k(`m:${s}`));
    const channel = k('events');
    const sub = redis.duplicate();
    const heard: string[] = [];
    await sub.subscribe(channel);
    sub.on('message', (_c, m) => heard.push(m));
    const create = (sha: string, tenant: string, platform = '0') =>
      runLua(redis, LUA.registryCreateVersion, keys, [sha, `{"sha":"${sha}"}`, 5, 'm', tenant, platform, '0', channel, 42]);
    try {
      expect(await create('aa', 'acme')).toEqual([1, 1]);
      expect(await create('bb', 'acme')).toEqual([2, 1]);
      expect(await create('aa', 'acme')).toEqual([1, 0]); // same bytes: the existing version
      expect(await create('cc', 'other')).toEqual([0, -1]); // not the owner
      expect(await create('cc', 'other', '1')).toEqual([3, 1]); // a platform operator may
      expect(await redis.hgetall(keys[4]!)).toEqual({ owner: 'acme', shared: '0' });
      expect(await redis.hget(keys[2]!, 'latest')).toBe('3');
      expect(await redis.zrange(keys[3]!, 0, -1)).toEqual(['m']);
      await new Promise<void>((r) => (heard.length >= 3 ? r() : sub.on('message', () => heard.length >= 3 && r())));
      expect(heard.map((m) => JSON.parse(m))).toEqual([1, 2, 3].map((v, i) => ({ name: 'm', version: v, sha256: ['aa', 'bb', 'cc'][i], bytes: 42 })));
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
});

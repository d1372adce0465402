-- A new model version in one step (core/registry.ts). Refuses a tenant that does not own the model
-- (returns {0, -1}); returns the existing version for these bytes ({v, 0}); or appends the next
-- version, moves `latest`, records a new model's owner, records the platform's signature and
-- announces the version ({v, 1}).
-- KEYS: 1 versions, 2 sha -> version, 3 aliases, 4 models zset, 5 model meta, 6 signatures.
-- ARGV: 1 sha256, 2 record JSON, 3 time, 4 name, 5 tenant, 6 platform ('1'), 7 shared by default
-- ('1'), 8 events channel, 9 bytes, 10 signature JSON ('' for none).
local owner = redis.call('HGET', KEYS[5], 'owner')
if not owner and redis.call('EXISTS', KEYS[1]) == 1 then owner = 'default' end
if owner and owner ~= ARGV[5] and ARGV[6] ~= '1' then return {0, -1} end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return {tonumber(existing), 0} end
if not owner then redis.call('HSET', KEYS[5], 'owner', ARGV[5], 'shared', ARGV[7]) end
-- Versions are numbered by a counter in the model's meta, so a number freed by an erasure is never
-- given again (a model from before the counter starts it at its count of versions).
if not redis.call('HGET', KEYS[5], 'seq') then redis.call('HSET', KEYS[5], 'seq', redis.call('HLEN', KEYS[1])) end
local v = redis.call('HINCRBY', KEYS[5], 'seq', 1)
redis.call('HSET', KEYS[1], v, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], v)
redis.call('HSET', KEYS[3], 'latest', v)
redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[4])
if ARGV[10] ~= '' then redis.call('HSETNX', KEYS[6], ARGV[1], cjson.encode({name = ARGV[4], version = v, signature = cjson.decode(ARGV[10])})) end
redis.call('PUBLISH', ARGV[8], cjson.encode({name = ARGV[4], version = v, sha256 = ARGV[1], bytes = tonumber(ARGV[9])}))
return {v, 1}

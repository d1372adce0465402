-- Atomically (core/registry.ts): refuse a tenant that does not own the model ({0, -1}); return the
-- existing version for these bytes ({v, 0}); or append the next version, move `latest` and, for a
-- new model, record its owner ({v, 1}), announcing it on the versions channel.
-- KEYS: 1 versions hash, 2 sha -> version hash, 3 aliases hash, 4 models index, 5 meta hash.
-- ARGV: 1 sha256, 2 version JSON, 3 time (ms), 4 name, 5 tenant, 6 platform operator ('1'),
-- 7 shared by default ('1'), 8 events channel, 9 bytes.
local owner = redis.call('HGET', KEYS[5], 'owner')
if not owner and redis.call('EXISTS', KEYS[1]) == 1 then owner = 'default' end
if owner and owner ~= ARGV[5] and ARGV[6] ~= '1' then return {0, -1} end
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return {tonumber(existing), 0} end
if not owner then redis.call('HSET', KEYS[5], 'owner', ARGV[5], 'shared', ARGV[7]) end
local v = redis.call('HLEN', KEYS[1]) + 1
redis.call('HSET', KEYS[1], v, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], v)
redis.call('HSET', KEYS[3], 'latest', v)
redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[4])
redis.call('PUBLISH', ARGV[8], cjson.encode({name = ARGV[4], version = v, sha256 = ARGV[1], bytes = tonumber(ARGV[9])}))
return {v, 1}

-- The one status move of batch records, native and OpenAI alike (core/status-transition.ts).
-- KEYS[1] = the record hash. ARGV[1] = new status, ARGV[2] = the time, ARGV[3] = a field stamped
-- only the first time ('' for none), ARGV[4] = a field stamped every time ('' for none), ARGV[5..] =
-- the statuses it may move from. Returns the previous status, false when not allowed, nil when there
-- is no record.
--!include status-guard.lua
local cur = allowed_status(5)
if not cur then return cur end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[2]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], ARGV[4], ARGV[2]) end
return cur

-- Adds bin counts to a drift window's current generation (core/drift.ts); when it holds half a
-- window of rows it becomes the previous one, so a report (both generations) covers the last W/2
-- to W rows in bounded memory.
-- KEYS: 1 current generation, 2 previous generation, 3 set of versions with windows.
-- ARGV: 1 rows per generation (W/2), 2 rows added, 3 "name@version", 4.. field, count pairs.
-- Returns the current generation's rows.
for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
local n = redis.call('HINCRBY', KEYS[1], 'n', ARGV[2])
if n >= tonumber(ARGV[1]) then redis.call('RENAME', KEYS[1], KEYS[2]) end
redis.call('SADD', KEYS[3], ARGV[3])
return n

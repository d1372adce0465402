-- Appends rows to a version's reference rows, kept to the first N, with a day's expiry
-- (core/drift.ts). KEYS[1] = the list. ARGV[1] = N, ARGV[2..] = rows (JSON). Returns the rows held.
local n = redis.call('LLEN', KEYS[1])
local want = tonumber(ARGV[1])
for i = 2, #ARGV do
  if n >= want then break end
  redis.call('RPUSH', KEYS[1], ARGV[i])
  n = n + 1
end
redis.call('PEXPIRE', KEYS[1], 86400000)
return n

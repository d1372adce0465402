-- A rollout's state saved by compare-and-set, with its audit record, in one step (core/rollouts.ts).
-- KEYS: 1 the rollout record, 2 its audit list, 3 the alias's active-rollout key.
-- ARGV: 1 the revision the stored record must have, 2 the new record JSON, 3 the audit record JSON
-- ('' for none), 4 '1' when the new state is final (frees the alias), 5 the rollout id.
-- Returns 1 when saved, 0 when the stored record moved on meanwhile.
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur).rev ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
  redis.call('LTRIM', KEYS[2], -1000, -1)
end
if ARGV[4] == '1' and redis.call('GET', KEYS[3]) == ARGV[5] then redis.call('DEL', KEYS[3]) end
return 1

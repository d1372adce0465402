-- A native batch fails with its reason in one step (core/batches.ts). KEYS[1] = the batch hash.
-- ARGV[1] = ISO time, ARGV[2] = the reason. Only a batch still under way fails; returns its
-- previous status, or false.
local cur = redis.call('HGET', KEYS[1], 'status')
if cur == 'queued' or cur == 'running' or cur == 'finalizing' or cur == 'cancelling' then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'completedAt', ARGV[1], 'error', ARGV[2])
  return cur
end
return false

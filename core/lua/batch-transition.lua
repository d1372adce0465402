-- A native batch's status move (core/batches.ts). KEYS[1] = the batch hash. ARGV[1] = new status,
-- ARGV[2] = ISO time, ARGV[3..] = allowed current statuses. Returns the previous status, or
-- false/nil when the move is not allowed.
--!include status-guard.lua
local cur = allowed_status()
if not cur then return cur end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
if ARGV[1] == 'running' then redis.call('HSETNX', KEYS[1], 'startedAt', ARGV[2]) end
if ARGV[1] == 'completed' or ARGV[1] == 'failed' or ARGV[1] == 'cancelled' then redis.call('HSET', KEYS[1], 'completedAt', ARGV[2]) end
return cur

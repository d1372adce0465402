-- An OpenAI batch's status move (core/openai-batch.ts). KEYS[1] = the batch hash. ARGV[1] = new
-- status, ARGV[2] = Unix seconds, ARGV[3..] = allowed current statuses. The time a status is first
-- reached is kept in "<status>_at" (failed_at, expired_at, ...). Returns the previous status, or
-- false/nil when the move is not allowed.
--!include status-guard.lua
local cur = allowed_status()
if not cur then return cur end
redis.call('HSET', KEYS[1], 'status', ARGV[1])
redis.call('HSETNX', KEYS[1], ARGV[1] .. '_at', ARGV[2])
return cur

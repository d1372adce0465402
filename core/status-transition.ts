// The one status move of batch records (native batches and OpenAI batches alike): atomic, only from
// the allowed statuses, stamping the time the status was reached.
import type { Redis } from 'ioredis';

// KEYS[1] = the record hash. ARGV[1] = new status, ARGV[2] = the time, ARGV[3] = a field stamped only
// the first time ('' for none), ARGV[4] = a field stamped every time ('' for none), ARGV[5..] = the
// statuses it may move from. Returns the previous status, false when not allowed, nil when no record.
const TRANSITION = `
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return nil end
for i = 5, #ARGV do
  if cur == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1])
    if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[2]) end
    if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], ARGV[4], ARGV[2]) end
    return cur
  end
end
return false
`;

/** Which time fields a move stamps: `first` keeps the first time the status was reached, `every` the latest. */
export interface Stamp {
  first?: string;
  every?: string;
}

/** Moves the hash at `key` to `to` when its status is one of `from`; the previous status, or null when not allowed (or no record). */
export async function transitionStatus<S extends string>(redis: Redis, key: string, to: S, time: string, stamp: Stamp, from: readonly S[]): Promise<S | null> {
  const r = await redis.eval(TRANSITION, 1, key, to, time, stamp.first ?? '', stamp.every ?? '', ...from);
  return (r as S | null) || null;
}

// The one status move of batch records (native batches and OpenAI batches alike): atomic, only from
// the allowed statuses, stamping the time the status was reached.
import type { Redis } from 'ioredis';
import { LUA, runLua } from './lua/scripts.ts';

// The script: core/lua/status-transition.lua.

/** Which time fields a move stamps: `first` keeps the first time the status was reached, `every` the latest. */
export interface Stamp {
  first?: string;
  every?: string;
}

/** Moves the hash at `key` to `to` when its status is one of `from`; the previous status, or null when not allowed (or no record). */
export async function transitionStatus<S extends string>(redis: Redis, key: string, to: S, time: string, stamp: Stamp, from: readonly S[]): Promise<S | null> {
  const r = await runLua(redis, LUA.statusTransition, [key], [to, time, stamp.first ?? '', stamp.every ?? '', ...from]);
  return (r as S | null) || null;
}

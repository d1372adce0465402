// The Lua scripts Redis runs for the platform, one file each beside this module (core/lua/*.lua).
// A line `--!include other.lua` is replaced by that file (once per script, for shared parts such
// as status-guard.lua). Each script is read once; calls go by SHA (EVALSHA), and a server that
// does not know it yet (NOSCRIPT: first use, a restarted Redis, another cluster node) gets it
// once by EVAL, which also loads it.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Redis } from 'ioredis';

const DIR = import.meta.dirname;
const INCLUDE = /^--!include\s+([a-z0-9-]+\.lua)\s*$/;

export interface LuaScript {
  /** The file's name without .lua. */
  readonly name: string;
  readonly numberOfKeys: number;
  /** The source with its includes expanded: what Redis runs. */
  readonly source: string;
  /** SHA1 of `source`: the name Redis knows it by. */
  readonly sha: string;
}

/** Reads `file`, replacing each include line by the included file (each file at most once). */
export function expandLua(file: string, seen = new Set<string>()): string {
  seen.add(file);
  return fs
    .readFileSync(`${DIR}/${file}`, 'utf8')
    .split('\n')
    .map((line) => {
      const m = INCLUDE.exec(line);
      if (!m) return line;
      if (seen.has(m[1]!)) return `-- (${m[1]} already included)`;
      return expandLua(m[1]!, seen).trimEnd();
    })
    .join('\n');
}

function script(name: string, numberOfKeys: number): LuaScript {
  const source = expandLua(`${name}.lua`);
  return { name, numberOfKeys, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** Every script, read once when this module loads. */
export const LUA = {
  statusTransition: script('status-transition', 1),
  batchFail: script('batch-fail', 1),
  registryCreateVersion: script('registry-create-version', 6),
  driftAddCounts: script('drift-add-counts', 3),
  driftAddReferenceRows: script('drift-add-reference-rows', 1),
  rolloutSave: script('rollout-save', 3),
} as const;

/** Runs `s` on `redis` by SHA; a server that does not know it yet (NOSCRIPT) gets it once by EVAL. */
export async function runLua(redis: Redis, s: LuaScript, keys: string[], args: (string | number)[]): Promise<unknown> {
  if (keys.length !== s.numberOfKeys) throw new Error(`Lua script ${s.name} takes ${s.numberOfKeys} keys, not ${keys.length}`);
  try {
    return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
  } catch (e) {
    if (!(e instanceof Error) || !e.message.startsWith('NOSCRIPT')) throw e;
    return redis.eval(s.source, keys.length, ...keys, ...args);
  }
}

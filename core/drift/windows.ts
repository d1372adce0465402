// Drift windows in Redis: per version, counts per reference bin in two generations of half a window
// of rows each (bounded: a count per bin, never rows).
import type { Redis } from 'ioredis';
import { LUA, runLua } from '../lua/scripts.ts';

// Windows of two generations: core/lua/drift-add-counts.lua.

/** Drift windows in Redis, under the registry's `records:` space. */
export class DriftWindows {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly window: number,
  ) {}

  private k(name: string, version: number, gen: 'cur' | 'prev') {
    return `${this.prefix}:records:drift:${name}:${version}:${gen}`;
  }
  get versionsKey() {
    return `${this.prefix}:records:drift:versions`;
  }

  /** Adds `rows` rows whose bins were counted into `counts` ("k:bin" -> n). */
  async add(name: string, version: number, rows: number, counts: Map<string, number>): Promise<void> {
    const args: (string | number)[] = [Math.max(1, Math.floor(this.window / 2)), rows, `${name}@${version}`];
    for (const [field, n] of counts) args.push(field, n);
    await runLua(this.redis, LUA.driftAddCounts, [this.k(name, version, 'cur'), this.k(name, version, 'prev'), this.versionsKey], args);
  }

  /** Counts of both generations and their rows. */
  async read(name: string, version: number): Promise<{ rows: number; counts: Map<string, number> }> {
    const [cur, prev] = await Promise.all([this.redis.hgetall(this.k(name, version, 'cur')), this.redis.hgetall(this.k(name, version, 'prev'))]);
    const counts = new Map<string, number>();
    let rows = 0;
    for (const h of [cur, prev]) {
      for (const [f, v] of Object.entries(h)) {
        if (f === 'n') rows += Number(v);
        else counts.set(f, (counts.get(f) ?? 0) + Number(v));
      }
    }
    return { rows, counts };
  }

  /** Versions that have a window (for /metrics). */
  versions(): Promise<string[]> {
    return this.redis.smembers(this.versionsKey);
  }
}

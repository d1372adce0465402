// A reference profile from served rows, for versions that have none (uploaded ones).
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LUA, runLua } from '../lua/scripts.ts';
import { metadataList, type VersionRecord } from '../registry.ts';
import type { ArtifactStore } from '../storage/index.ts';
import { modelSlots, type Slot } from './features.ts';
import { processedDriftSpecs } from './processed.ts';
import { referenceKey } from './schema.ts';
import { buildProfile } from './stats.ts';

// Reference rows, the first N: core/lua/drift-add-reference-rows.lua.

/**
 * A reference from served rows, for versions that have none (uploaded ones): the first N rows
 * scored (online or in batches) gather in a Redis list (bounded: N rows, a day's expiry); the first
 * process that sees N builds the profile, stores it and records it on the version, as
 * PUT .../reference does. Versions whose inputs cannot be profiled are skipped.
 */
export class ReferenceCollector {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly store: ArtifactStore,
    private readonly registry: {
      getVersion(name: string, version: number): Promise<VersionRecord>;
      setExplainArtifact(name: string, version: number, field: 'reference', ref: { key: string; rows: number; features: number }): Promise<unknown>;
    },
    /** N: rows the reference is built from (0: never). */
    readonly rows: number,
  ) {}

  private k(v: { name: string; version: number }, what: 'rows' | 'lock') {
    return `${this.prefix}:records:drift:${v.name}:${v.version}:reference-${what}`;
  }

  /** The version's profiled features, or null when it has a reference already or none can be made. */
  slotsFor(v: VersionRecord): Slot[] | null {
    if (this.rows <= 0 || v.explain?.reference) return null;
    try {
      // A model with declared processing: summaries of its processed inputs and its outputs (processed.ts).
      if (v.processing) return modelSlots(processedDriftSpecs(v));
      const named = metadataList<string>(v, 'features');
      return modelSlots(v.inputs, named && named.length ? named : undefined);
    } catch {
      return null;
    }
  }

  /** Adds rows (one value per slot); builds the reference once N are there. Returns the rows held. */
  async add(v: VersionRecord, slots: Slot[], rows: (number | string)[][]): Promise<number> {
    if (!rows.length) return 0;
    const n = Number(await runLua(this.redis, LUA.driftAddReferenceRows, [this.k(v, 'rows')], [this.rows, ...rows.map((r) => JSON.stringify(r))]));
    if (n >= this.rows) await this.build(v, slots);
    return n;
  }

  private async build(v: VersionRecord, slots: Slot[]): Promise<void> {
    // One builder per version; the lock expires should it die midway.
    if ((await this.redis.set(this.k(v, 'lock'), '1', 'PX', 60_000, 'NX')) !== 'OK') return;
    const fresh = await this.registry.getVersion(v.name, v.version);
    if (fresh.explain?.reference) return; // set meanwhile (PUT .../reference)
    const rows = (await this.redis.lrange(this.k(v, 'rows'), 0, this.rows - 1)).map((s) => JSON.parse(s) as (number | string)[]);
    const values = slots.map((_, k) => rows.map((r) => r[k]!));
    const text = JSON.stringify(buildProfile(slots, values));
    const key = referenceKey(createHash('sha256').update(text).digest('hex'));
    await this.store.put(key, text);
    await this.registry.setExplainArtifact(v.name, v.version, 'reference', { key, rows: rows.length, features: slots.length });
    await this.redis.del(this.k(v, 'rows'));
  }
}

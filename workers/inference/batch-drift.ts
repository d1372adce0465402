// Drift of batch inputs: the engine threads draw a share of each chunk's rows (drift-rows.ts); here
// they are counted into the version's drift window (one Redis call per chunk), or, for a version
// without a reference, added to the rows its reference is built from (the first N scored).
import type { Redis } from 'ioredis';
import type { Config } from '../../core/config.ts';
import { countRows, DriftWindows, featureRows, profileCache, ReferenceCollector, type DriftProfile, type RowsOf } from '../../core/drift/index.ts';
import type { Logger } from '../../core/logger.ts';
import { LEGACY_ACCESS, Registry, type VersionRecord } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';

const MAX_PROFILES = 64;

/** What one chunk does for drift: the share of rows its threads draw, and what to do with them. */
export interface ChunkDrift {
  /** Read at each segment: 0 once the rows wanted are there. */
  readonly share: number;
  /** Most rows a segment draws (default: the threads' own bound). */
  readonly maxRows?: number;
  /** Adds one segment's drawn rows. */
  add(inputs: RowsOf[]): void;
  /** The reference whose bins the engine threads count the drawn rows into (then they give addCounts, not add). */
  profile?: DriftProfile;
  /** Adds one segment's rows counted by its thread. */
  addCounts?(rows: number, counts: [string, number][]): void;
  /** Writes what the chunk drew (never throws). */
  flush(): Promise<void>;
}

export class BatchDrift {
  private readonly registry: Registry;
  private readonly windows: DriftWindows;
  private readonly collector: ReferenceCollector;
  private readonly profiles: (key: string) => Promise<DriftProfile>;
  /** Versions whose reference rows are complete (as far as this process knows). */
  private readonly collected = new Set<string>();
  /** Reference rows gathered by this process's chunks and not yet written, per version: no chunk draws more than are wanted. */
  private readonly gathering = new Map<string, number>();

  constructor(
    redis: Redis,
    prefix: string,
    store: ArtifactStore,
    private readonly cfg: Pick<Config, 'MODELQ_DRIFT_WINDOW' | 'MODELQ_DRIFT_SAMPLE' | 'MODELQ_DRIFT_REFERENCE_ROWS'>,
    private readonly logger?: Logger,
  ) {
    this.registry = new Registry(redis, prefix);
    this.profiles = profileCache(store, MAX_PROFILES);
    this.windows = new DriftWindows(redis, prefix, cfg.MODELQ_DRIFT_WINDOW);
    this.collector = new ReferenceCollector(redis, prefix, store, this.registry, cfg.MODELQ_DRIFT_REFERENCE_ROWS);
  }

  private profile(key: string): Promise<DriftProfile> {
    return this.profiles(key);
  }

  /**
   * The drift work of one chunk of a batch of version `name@version` submitted by `tenant`; share 0
   * when there is none. Only the owner's batches count: another tenant's rows of a shared model never
   * become its reference nor enter the owner's window.
   */
  async forChunk(name: string, version: number, tenant?: string): Promise<ChunkDrift> {
    const none: ChunkDrift = { share: 0, add: () => {}, flush: async () => {} };
    let v: VersionRecord;
    try {
      v = await this.registry.getVersion(name, version);
      if (tenant !== undefined && tenant !== ((await this.registry.access(name))?.owner ?? LEGACY_ACCESS.owner)) return none;
    } catch {
      return none; // removed meanwhile: nothing to watch
    }
    const ref = v.explain?.reference;
    if (ref) {
      if (this.cfg.MODELQ_DRIFT_SAMPLE <= 0) return none;
      let profile: DriftProfile;
      try {
        profile = await this.profile(ref.key);
      } catch (e) {
        this.logger?.debug({ err: (e as Error).message }, 'drift profile not readable');
        return none;
      }
      const counts = new Map<string, number>();
      let rows = 0;
      return {
        share: this.cfg.MODELQ_DRIFT_SAMPLE,
        profile,
        add: (inputs) => {
          rows += countRows(profile, inputs, counts);
        },
        addCounts: (n, c) => {
          rows += n;
          for (const [k, v] of c) counts.set(k, (counts.get(k) ?? 0) + v);
        },
        flush: async () => {
          if (!rows) return;
          await this.windows.add(name, version, rows, counts).catch((e: Error) => this.logger?.debug({ err: e.message }, 'drift counts not written'));
        },
      };
    }
    // No reference: every row is drawn (up to the threads' bound per segment) until N are gathered.
    const id = `${name}@${version}`;
    const slots = this.collected.has(id) ? null : this.collector.slotsFor(v);
    if (!slots) return none;
    const gathered: (number | string)[][] = [];
    const want = this.collector.rows;
    const room = () => Math.max(0, want - (this.gathering.get(id) ?? 0));
    return {
      // Every row is drawn, but only until this process's chunks hold the rows wanted.
      get share() {
        return room() > 0 ? 1 : 0;
      },
      get maxRows() {
        return room();
      },
      add: (inputs) => {
        const rows = featureRows(slots, inputs, Math.min(room(), want - gathered.length));
        gathered.push(...rows);
        this.gathering.set(id, (this.gathering.get(id) ?? 0) + rows.length);
      },
      flush: async () => {
        if (!gathered.length) return;
        try {
          if ((await this.collector.add(v, slots, gathered)) >= this.collector.rows) this.collected.add(id);
        } catch (e) {
          this.logger?.warn({ err: (e as Error).message }, 'reference rows not written');
        } finally {
          const left = (this.gathering.get(id) ?? 0) - gathered.length;
          if (left > 0) this.gathering.set(id, left);
          else this.gathering.delete(id);
        }
      },
    };
  }
}

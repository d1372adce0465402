// Reference profiles read from the artifact store, kept in memory: ONE bounded cache per store (so per
// process), shared by whatever reads profiles there (the producer's drift sampler, its /drift route and
// /metrics scrape; a worker's batch drift). A reference key names immutable content (a profile's
// sha256, or the training job that wrote it), so a cached profile never goes stale.
import type { ArtifactStore } from '../storage/index.ts';
import { driftProfileSchema, type DriftProfile } from './schema.ts';

/** Profiles kept per store unless a caller asks for more. */
export const MAX_PROFILES = 256;

class ProfileCache {
  private readonly profiles = new Map<string, Promise<DriftProfile>>();
  constructor(
    private readonly store: ArtifactStore,
    public max: number,
  ) {}

  /** The profile under `key` (oldest dropped first past `max`; a failed read is not kept). */
  get(key: string): Promise<DriftProfile> {
    let p = this.profiles.get(key);
    if (!p) {
      p = this.store.get(key).then((b) => driftProfileSchema.parse(JSON.parse(b.toString('utf8'))));
      this.profiles.set(key, p);
      p.catch(() => this.profiles.delete(key));
      if (this.profiles.size > this.max) this.profiles.delete(this.profiles.keys().next().value!);
    }
    return p;
  }

  forget(key: string): void {
    this.profiles.delete(key);
  }
}

const caches = new WeakMap<ArtifactStore, ProfileCache>();

/**
 * The reader of reference profiles by key, through the store's one cache (made on first use); `max`
 * raises its bound (the largest asked for is kept).
 */
export function profileCache(store: ArtifactStore, max: number = MAX_PROFILES): (key: string) => Promise<DriftProfile> {
  let c = caches.get(store);
  if (!c) caches.set(store, (c = new ProfileCache(store, max)));
  else c.max = Math.max(c.max, max);
  const cache = c;
  return (key) => cache.get(key);
}

/** Drops a profile from the store's cache (its object was erased), so no process keeps serving it from memory. */
export function forgetProfile(store: ArtifactStore, key: string): void {
  caches.get(store)?.forget(key);
}

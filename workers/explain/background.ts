// A version's background rows, read from the artifact store once per worker and kept (they are small:
// tens of rows) in a bounded map keyed by their content-addressed key.
import { backgroundSchema } from '../../core/jobs/explain.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';

const MAX_CACHED = 64;
const cache = new Map<string, Promise<{ x: Float32Array; features: number }>>();

export function loadBackground(store: ArtifactStore, key: string): Promise<{ x: Float32Array; features: number }> {
  let p = cache.get(key);
  if (!p) {
    p = store.get(key).then((buf) => {
      const b = backgroundSchema.parse(JSON.parse(buf.toString('utf8')));
      return { x: Float32Array.from(b.x), features: b.features };
    });
    cache.set(key, p);
    p.catch(() => cache.delete(key));
    if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  }
  return p;
}

// What a version's lineage says it was trained on: the dataset of the training job that made it or,
// for a compressed version, the one that made its nearest trained ancestor.
import type { Registry, VersionRecord } from './registry.ts';

/** Ancestors followed at most (a compression of a compression of ...). */
const MAX_DEPTH = 16;

interface Lineage {
  source?: string;
  dataset?: unknown;
  parent?: { name: string; version: number };
}

/** The id of the dataset the version (or its nearest trained ancestor) was trained on, if any. */
export async function trainingDatasetId(registry: Registry, v: VersionRecord): Promise<string | undefined> {
  let cur: VersionRecord | undefined = v;
  for (let depth = 0; cur && depth < MAX_DEPTH; depth++) {
    const lineage = cur.lineage as Lineage | undefined;
    if (lineage?.source === 'train') return typeof lineage.dataset === 'string' ? lineage.dataset : undefined;
    cur = lineage?.parent ? await registry.getVersion(lineage.parent.name, lineage.parent.version).catch(() => undefined) : undefined;
  }
  return undefined;
}

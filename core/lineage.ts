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

/** A pipeline's lineage: who registered it, and each step's model version (and alias, when named by one) and digest. */
export function pipelineLineage(
  steps: { name: string; model: string; version: number; alias?: string | undefined; sha256: string }[],
  by: { tenant: string; keyId?: string | undefined },
): Record<string, unknown> {
  return {
    source: 'pipeline',
    tenant: by.tenant,
    ...(by.keyId ? { keyId: by.keyId } : {}),
    steps: steps.map((s) => ({ step: s.name, model: s.model, version: s.version, ...(s.alias ? { alias: s.alias } : {}), sha256: s.sha256 })),
  };
}

// Where a batch's output and error parts live: an uploaded batch's in the artifact store under its
// id; a batch by reference's under its output prefix (the JSONL output stays in the artifact store
// too when the prefix holds another format, so the download routes can still send JSONL).
import { batchKeys, outputPrefixKeys, type BatchSpec } from './jobs/batch.ts';
import type { ArtifactStore } from './storage/index.ts';
import type { ObjectStores } from './storage/object-uris.ts';

export type PartKind = 'output' | 'errors';

/** The JSONL part `index` of a batch's output or errors. */
export function jsonlPart(
  spec: BatchSpec,
  kind: PartKind,
  index: number,
  platform: ArtifactStore,
  objects?: ObjectStores,
): { store: ArtifactStore; key: string } {
  const out = spec.output;
  if (!out || (kind === 'output' && out.format !== 'jsonl'))
    return { store: platform, key: kind === 'output' ? batchKeys.output(spec.id, index) : batchKeys.errors(spec.id, index) };
  if (!objects) throw new Error(`batch ${spec.id} is by reference: its parts need the object stores`);
  return objects.resolve(kind === 'output' ? outputPrefixKeys.part(out.uri, index, 'jsonl') : outputPrefixKeys.errors(out.uri, index));
}

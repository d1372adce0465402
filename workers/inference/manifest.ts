// A batch by reference's `_manifest.json`: written by the finalizer last, once every chunk's part
// is in place, so a prefix with a manifest is complete and one without is not. It lists each part
// (its URI, size, sha256, rows and error rows, and where its rows came from), the model version and
// the totals. JSONL/CSV parts number their rows from 0; `source.firstRow` is the part's first row
// in its object, counted here from the parts before it.
import type { ChunkOutcome } from '../../core/batches.ts';
import { AppError } from '../../core/errors.ts';
import { outputPrefixKeys, type BatchSpec } from '../../core/jobs/batch.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';

export interface ManifestPart {
  index: number;
  uri: string;
  bytes: number;
  sha256: string;
  rows: number;
  errors: number;
  errorsUri: string;
  errorsBytes: number;
  errorsSha256: string;
  source: { uri: string; start: number; end: number; firstRow: number };
}

export function buildManifest(spec: BatchSpec, outcomes: Map<number, ChunkOutcome>) {
  if (!spec.output) throw new AppError('internal', `batch ${spec.id} has no output prefix`);
  // An upload with an output format reads its one stored file; its rows are numbered through the file.
  const source = spec.source ?? { uris: [`store:${spec.inputKey}`], files: [{ uri: `store:${spec.inputKey}`, bytes: spec.bytes }] };
  const nextRow = new Map<number, number>(); // per file: the first row of its next part
  const parts: ManifestPart[] = [];
  for (let i = 0; i < spec.chunks; i++) {
    const o = outcomes.get(i);
    if (!o?.part) throw new AppError('internal', `chunk ${i} of batch ${spec.id} has no part to list`);
    const { file, start, end, firstRow: groupFirstRow, ...written } = o.part;
    const rows = o.completed + o.failed;
    const firstRow = spec.format === 'parquet' || !spec.source ? groupFirstRow : (nextRow.get(file) ?? 0);
    nextRow.set(file, firstRow + rows);
    parts.push({ index: i, ...written, rows, errors: o.failed, source: { uri: source.files[file]!.uri, start, end, firstRow } });
  }
  return {
    batch: spec.id,
    model: { name: spec.model.name, version: spec.model.version, sha256: spec.model.sha256 },
    input: { uris: source.uris, format: spec.format, objects: source.files.map((f) => ({ uri: f.uri, bytes: f.bytes })) },
    output: spec.output,
    rows: parts.reduce((n, p) => n + p.rows, 0),
    errors: parts.reduce((n, p) => n + p.errors, 0),
    parts,
    createdAt: spec.createdAt,
    completedAt: new Date().toISOString(),
  };
}

export async function writeManifest(spec: BatchSpec, outcomes: Map<number, ChunkOutcome>, objects: ObjectStores): Promise<void> {
  const manifest = buildManifest(spec, outcomes);
  const { store, key } = objects.resolve(outputPrefixKeys.manifest(spec.output!.uri));
  await store.put(key, `${JSON.stringify(manifest, null, 2)}\n`);
}

// Reading a batch's output or errors: the parts, in chunk order, streamed to the response with
// `pipeline`, so a part that fails mid-download (removed by retention, an S3 error) ends the
// response as failed instead of crashing the producer or ending it as a short 200. JSONL is sent
// with its Content-Length, so even a client that ignores the abort sees the truncation.
import { Readable } from 'node:stream';
import type { Request, Response } from 'express';
import type { BatchView } from '../../core/batches.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import { jsonlPart, type PartKind } from '../../core/batch-parts.ts';
import { csvClasses, explainOutputSpecs, type BatchSpec } from '../../core/jobs/batch.ts';
import type { Logger } from '../../core/logger.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import { sendStream } from '../http.ts';
import { jsonlToCsv } from '../../core/rows/to-csv.ts';
import { jsonlToParquet } from '../../core/rows/to-parquet.ts';

export type { PartKind };
const FORMATS = ['jsonl', 'csv', 'parquet'] as const;

/** The parts to send: every scored chunk's part must be there; an unscored chunk (cancelled) has none. */
async function partsOf(
  deps: { store: ArtifactStore; objects?: ObjectStores },
  v: BatchView & { spec: BatchSpec },
  kind: PartKind,
  scored: Set<number>,
): Promise<Part[]> {
  const parts: Part[] = [];
  for (let i = 0; i < v.chunks.total; i++) {
    const { store, key } = jsonlPart(v.spec, kind, i, deps.store, deps.objects);
    const st = await store.stat(key);
    if (st) parts.push({ store, key, bytes: st.bytes });
    else if (scored.has(i)) throw new AppError('not_found', `part ${i} of the batch's ${kind} is no longer there (expired or removed)`);
  }
  return parts;
}

interface Part {
  store: ArtifactStore;
  key: string;
  bytes: number;
}

async function* concat(parts: Part[]): AsyncGenerator<Buffer> {
  for (const p of parts) {
    for await (const b of await p.store.read(p.key)) yield b as Buffer;
  }
}

export async function sendParts(
  req: Request,
  res: Response,
  deps: { store: ArtifactStore; objects?: ObjectStores; logger: Logger },
  v: BatchView & { spec: BatchSpec },
  kind: PartKind,
  scored: Set<number>,
): Promise<void> {
  const format = req.query.format === undefined ? 'jsonl' : String(req.query.format);
  if (!(FORMATS as readonly string[]).includes(format)) throw badRequest(`format must be one of ${FORMATS.join(', ')}`);
  if (kind === 'output' && format !== 'jsonl' && v.spec.explain?.method === 'occlusion')
    throw badRequest(`batch ${v.id} explains text (a list of words per row, of varying length): download it as JSONL (format=jsonl), not ${format}`);
  const parts = await partsOf(deps, v, kind, scored);
  const ext = kind === 'output' ? format : 'jsonl'; // errors are JSONL whatever the format
  res.setHeader('Content-Type', ext === 'csv' ? 'text/csv; charset=utf-8' : ext === 'parquet' ? 'application/vnd.apache.parquet' : 'application/x-ndjson');
  res.setHeader('Content-Disposition', `attachment; filename="${v.id}-${kind}.${ext}"`);
  if (ext === 'jsonl') res.setHeader('Content-Length', String(parts.reduce((n, p) => n + p.bytes, 0)));
  const body = concat(parts);
  // An explained batch's lines carry its attributions like outputs: columns of their own.
  const outputs = [...v.spec.model.outputs, ...(v.spec.explain ? explainOutputSpecs(v.spec.explain) : [])];
  const source =
    ext === 'csv'
      ? Readable.from(
          jsonlToCsv(
            body,
            outputs.map((o) => o.name),
            csvClasses(v.spec),
          ),
        )
      : ext === 'parquet'
        ? Readable.from(jsonlToParquet(body, outputs))
        : Readable.from(body);
  await sendStream(res, source, deps.logger, { batch: v.id, kind });
}

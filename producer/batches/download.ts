// Reading a batch's output or errors: the parts, in chunk order, streamed to the response with
// `pipeline`, so a part that fails mid-download (removed by retention, an S3 error) ends the
// response as failed instead of crashing the producer or ending it as a short 200. JSONL is sent
// with its Content-Length, so even a client that ignores the abort sees the truncation.
import { Readable } from 'node:stream';
import type { Request, Response } from 'express';
import type { BatchView } from '../../core/batches.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import { jsonlPart, type PartKind } from '../../core/batch-parts.ts';
import { batchOutputSpecs, csvClasses, explainOutputSpecs, outputPrefixKeys, versionedOutput, type BatchSpec } from '../../core/jobs/batch.ts';
import type { Logger } from '../../core/logger.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ObjectStores } from '../../core/storage/object-uris.ts';
import { sendStream } from '../http.ts';
import { jsonlToCsv } from '../../core/rows/to-csv.ts';
import { jsonlToParquet } from '../../core/rows/to-parquet.ts';
import { joinParquetFiles } from '../../core/rows/parquet-stitch.ts';
import { ParquetShapeError } from '../../core/rows/parquet.ts';

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

/** By reference (or an upload with an output format): the parts the workers wrote in that format. */
async function writtenParts(
  deps: { store: ArtifactStore; objects?: ObjectStores },
  v: BatchView & { spec: BatchSpec },
  format: 'csv' | 'parquet',
  scored: Set<number>,
): Promise<Part[]> {
  if (!deps.objects) throw new AppError('internal', `batch ${v.id} has parts by URI: this producer has no object stores`);
  const parts: Part[] = [];
  for (let i = 0; i < v.chunks.total; i++) {
    const { store, key } = deps.objects.resolve(outputPrefixKeys.part(v.spec.output!.uri, i, format));
    const st = await store.stat(key);
    if (st) parts.push({ store, key, bytes: st.bytes });
    else if (scored.has(i)) throw new AppError('not_found', `part ${i} of the batch's output is no longer there (expired or removed)`);
  }
  return parts;
}

async function collect(it: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** CSV parts as one file: the first header kept, each later part's header line dropped. */
async function* csvParts(parts: Part[]): AsyncGenerator<Buffer> {
  let header = false;
  for (const p of parts) {
    let skipping = header;
    for await (const raw of await p.store.read(p.key)) {
      let b = raw as Buffer;
      if (skipping) {
        const nl = b.indexOf(0x0a);
        if (nl < 0) continue;
        b = b.subarray(nl + 1);
        skipping = false;
      }
      if (b.length) {
        header = true;
        yield b;
      }
    }
  }
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
  const written = v.spec.output?.format;
  // Parts the workers wrote in the format asked for are sent as they are (CSV: one header; Parquet: the
  // row groups under one footer), never converted here.
  if (kind === 'output' && written && written !== 'jsonl' && format === written && !v.spec.explain) {
    const parts = await writtenParts(deps, v, written, scored);
    res.setHeader('Content-Type', written === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.apache.parquet');
    res.setHeader('Content-Disposition', `attachment; filename="${v.id}-${kind}.${written}"`);
    const body =
      written === 'csv'
        ? csvParts(parts)
        : await joinParquetFiles(
            parts.map((p) => ({
              bytes: p.bytes,
              read: async (s, e) => Buffer.concat((await collect(await p.store.read(p.key, { start: s, end: e }))) as Buffer[]),
              stream: (s, e) => p.store.read(p.key, { start: s, end: e }) as Promise<AsyncIterable<Uint8Array>>,
            })),
          ).catch((e: Error) => {
            throw e instanceof ParquetShapeError ? new AppError('conflict', e.message) : e;
          });
    await sendStream(res, Readable.from(body), deps.logger, { batch: v.id, kind });
    return;
  }
  const parts = await partsOf(deps, v, kind, scored);
  const ext = kind === 'output' ? format : 'jsonl'; // errors are JSONL whatever the format
  res.setHeader('Content-Type', ext === 'csv' ? 'text/csv; charset=utf-8' : ext === 'parquet' ? 'application/vnd.apache.parquet' : 'application/x-ndjson');
  res.setHeader('Content-Disposition', `attachment; filename="${v.id}-${kind}.${ext}"`);
  if (ext === 'jsonl') res.setHeader('Content-Length', String(parts.reduce((n, p) => n + p.bytes, 0)));
  const body = concat(parts);
  // An explained batch's lines carry its attributions like outputs: columns of their own.
  const outputs = [...batchOutputSpecs(v.spec), ...(v.spec.explain ? explainOutputSpecs(v.spec.explain) : [])];
  const source =
    ext === 'csv'
      ? Readable.from(
          jsonlToCsv(
            body,
            outputs.map((o) => o.name),
            csvClasses(v.spec),
            versionedOutput(v.spec),
          ),
        )
      : ext === 'parquet'
        ? Readable.from(jsonlToParquet(body, outputs, versionedOutput(v.spec)))
        : Readable.from(body);
  await sendStream(res, source, deps.logger, { batch: v.id, kind });
}

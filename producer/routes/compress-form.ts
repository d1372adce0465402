// POST /v1/jobs/compress as multipart/form-data: a `request` field (the JSON body) first, then a
// `samples` file of inputs (JSONL, CSV or Parquet, as a batch file) that agreement is measured on.
// The file streams to the artifact store under the job's id, bounded in bytes
// (MODELQ_COMPRESS_SAMPLES_MAX_MB) and rows (MODELQ_COMPRESS_SAMPLES_MAX_ROWS); the job carries its
// key, never its rows. Whatever fails removes what was stored.
import type { Request } from 'express';
import busboy from 'busboy';
import { pipeline } from 'node:stream/promises';
import { badRequest } from '../../core/errors.ts';
import type { SamplesRef } from '../../core/jobs/compress.ts';
import { metadataOf, readFooter } from '../../core/rows/parquet.ts';
import { RowScanner } from '../../core/rows/scanner.ts';
import { TooLargeError } from '../../core/storage/index.ts';
import { declaredByFile } from '../batches/multipart.ts';
import { decideFormat, SNIFF_BYTES } from '../batches/sniff.ts';
import type { ProducerDeps } from '../deps.ts';

export const samplesKey = (jobId: string, format: string) => `compress/${jobId}/samples.${format}`;

/** Rows of a stored JSONL or CSV file (the CSV header not counted), counted as the batch path splits them. */
async function textRows(d: ProducerDeps, key: string, format: 'jsonl' | 'csv', maxRows: number): Promise<number> {
  const scanner = new RowScanner(format, { maxRows });
  try {
    for await (const chunk of await d.store.read(key)) scanner.push(chunk as Buffer);
    return scanner.end().rows;
  } catch (e) {
    if (e instanceof RangeError) throw badRequest(`samples: more than ${maxRows} rows (MODELQ_COMPRESS_SAMPLES_MAX_ROWS)`);
    throw e;
  }
}

/** Decides the stored upload's format from its bytes, counts its rows, and moves it under its format's key. */
async function settle(d: ProducerDeps, tmp: string, jobId: string, bytes: number, file: { filename?: string; mimeType?: string }): Promise<SamplesRef> {
  const range = async (start: number, end: number) => {
    const parts: Buffer[] = [];
    for await (const c of await d.store.read(tmp, { start, end })) parts.push(c as Buffer);
    return new Uint8Array(Buffer.concat(parts));
  };
  const format = decideFormat(await range(0, Math.min(SNIFF_BYTES, bytes)), declaredByFile(file.filename, file.mimeType));
  const maxRows = d.cfg.MODELQ_COMPRESS_SAMPLES_MAX_ROWS;
  let rows: number;
  if (format === 'parquet') {
    const meta = metadataOf(await readFooter(range, bytes));
    rows = Number(meta.num_rows);
    if (rows > maxRows) throw badRequest(`samples: ${rows} rows; at most ${maxRows} (MODELQ_COMPRESS_SAMPLES_MAX_ROWS)`);
  } else rows = await textRows(d, tmp, format, maxRows);
  if (rows === 0) throw badRequest('samples: the file has no rows');
  const key = samplesKey(jobId, format);
  await d.store.move(tmp, key);
  return { key, format, bytes, rows, ...(file.filename ? { filename: file.filename.slice(-200) } : {}) };
}

/** The `request` field's JSON and the stored `samples` file. */
export function readCompressForm(d: ProducerDeps, req: Request, jobId: string): Promise<{ body: unknown; samples?: SamplesRef }> {
  const tmp = `compress/${jobId}/samples.upload`;
  const maxBytes = d.cfg.MODELQ_COMPRESS_SAMPLES_MAX_MB * 1024 * 1024;
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fields: 4, fieldSize: d.cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024 } });
    } catch (e) {
      return reject(badRequest(`bad multipart body: ${(e as Error).message}`));
    }
    let done = false;
    /** Refuses the form at once: the rest of the body is read and dropped (busboy stalls on a file the store stopped reading). */
    const refuse = (e: unknown) => {
      if (done) return;
      done = true;
      req.unpipe(bb);
      req.resume();
      void d.store.delete(tmp).catch(() => {});
      reject(e);
    };
    let request: string | undefined;
    let stored: Promise<{ bytes: number; filename?: string; mimeType?: string }> | undefined;
    let problem: Error | undefined;
    bb.on('field', (name, value, info) => {
      if (name !== 'request') problem ??= badRequest(`unexpected form field "${name}"; send the JSON body as "request" and the inputs as "samples"`);
      else if (info.valueTruncated) problem ??= badRequest(`the request field exceeds MODELQ_MAX_REQUEST_MB (${d.cfg.MODELQ_MAX_REQUEST_MB} MiB)`);
      else if (stored) problem ??= badRequest('the "request" field must come before the "samples" file');
      else request = value;
    });
    bb.on('file', (name, stream, info) => {
      stream.on('error', () => {}); // a truncated body errors it too; the store's write reports it
      if (name !== 'samples' || stored || problem) {
        problem ??= badRequest(`unexpected file field "${name}"; send the inputs as "samples" (one file)`);
        stream.resume();
        return;
      }
      stored = d.store.put(tmp, stream, { maxBytes }).then(
        (p) => ({ bytes: p.bytes, filename: info.filename, mimeType: info.mimeType }),
        (e: unknown) => {
          const err =
            e instanceof TooLargeError
              ? badRequest(`samples: the file exceeds MODELQ_COMPRESS_SAMPLES_MAX_MB (${d.cfg.MODELQ_COMPRESS_SAMPLES_MAX_MB} MiB)`)
              : e;
          refuse(err);
          throw err;
        },
      );
      stored.catch(() => {}); // awaited at close
    });
    bb.on('close', () => {
      void (async () => {
        try {
          if (problem) throw problem;
          if (request === undefined) throw badRequest('the multipart body has no "request" field (the JSON body of the compression request)');
          let body: unknown;
          try {
            body = JSON.parse(request);
          } catch (e) {
            throw badRequest(`request: not valid JSON: ${(e as Error).message}`);
          }
          if (!stored) return { body };
          const put = await stored;
          return { body, samples: await settle(d, tmp, jobId, put.bytes, put) };
        } catch (e) {
          await stored?.catch(() => {});
          throw e;
        }
      })().then((form) => {
        if (done) return;
        done = true;
        resolve(form);
      }, refuse);
    });
    bb.on('error', (e) => refuse(badRequest(`bad multipart body: ${(e as Error).message}`)));
    pipeline(req, bb).catch((e: Error) => refuse(badRequest(`the upload was aborted or broken: ${e.message}`)));
  });
}

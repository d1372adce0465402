// OpenAI Files under /openai/v1/files: multipart uploads streamed to the artifact store (never held
// whole), list with after/limit/order/purpose, retrieve, content and delete, per tenant.
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { fileObject, openaiKeys, OpenaiStore, type FileRecord } from '../../core/openai-batch.ts';
import { badRequest, notFound } from '../../core/errors.ts';
import { TooLargeError } from '../../core/storage/index.ts';
import { principalOf } from '../auth.ts';
import type { ProducerDeps } from '../deps.ts';
import { OPENAI_BASE } from './base.ts';
import { parseBody, sendStream } from '../http.ts';

/** Purposes a client may upload; batch_output and batch_error are written by the platform. */
const UPLOAD_PURPOSES = ['batch'];

export const listFilesSchema = z.object({
  after: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  order: z.enum(['asc', 'desc']).default('desc'),
  purpose: z.string().max(40).optional(),
});

export function filesRouter(d: ProducerDeps, store: OpenaiStore): Router {
  const r = Router();

  const load = async (req: Request): Promise<FileRecord> => {
    const id = String(req.params.id);
    const f = /^file-[0-9a-f]{24}$/.test(id) ? await store.file(id, principalOf(req).tenant) : null;
    if (!f) throw notFound(`No such File object: ${id.slice(0, 60)}`);
    return f;
  };

  r.post(`${OPENAI_BASE}/files`, async (req, res) => {
    res.json(fileObject(await upload(req, d, store)));
  });

  r.get(`${OPENAI_BASE}/files`, async (req, res) => {
    const q = parseBody(listFilesSchema, req.query, 'query');
    const tenant = principalOf(req).tenant;
    // Filtering by purpose pages over the tenant's files until the page is full.
    const data: ReturnType<typeof fileObject>[] = [];
    let after = q.after;
    let hasMore = true;
    while (data.length < q.limit && hasMore) {
      const page = await store.page('files', tenant, after, q.limit - data.length, q.order);
      hasMore = page.hasMore;
      for (const id of page.ids) {
        after = id;
        const f = await store.file(id, tenant);
        if (f && (!q.purpose || f.purpose === q.purpose)) data.push(fileObject(f));
      }
      if (page.ids.length === 0) break;
    }
    res.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: hasMore });
  });

  r.get(`${OPENAI_BASE}/files/:id`, async (req, res) => void res.json(fileObject(await load(req))));

  r.get(`${OPENAI_BASE}/files/:id/content`, async (req, res) => {
    const f = await load(req);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(f.bytes));
    await sendStream(res, await d.store.read(openaiKeys.file(f.id)), d.logger, { file: f.id });
  });

  r.delete(`${OPENAI_BASE}/files/:id`, async (req, res) => {
    const f = await load(req);
    await store.deleteFile(f);
    await d.store.delete(openaiKeys.file(f.id)).catch(() => {});
    res.json({ id: f.id, object: 'file', deleted: true });
  });

  return r;
}

/** Streams the multipart `file` field to the store; `purpose` may come before or after it (the SDK sends it after). */
function upload(req: Request, d: ProducerDeps, store: OpenaiStore): Promise<FileRecord> {
  return new Promise((resolve, reject) => {
    if (!req.is('multipart/form-data')) return reject(badRequest('POST /files takes multipart/form-data with "file" and "purpose"'));
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fields: 10, fieldSize: 8192 } });
    } catch (e) {
      return reject(badRequest(`bad multipart body: ${(e as Error).message}`));
    }
    const id = `file-${randomBytes(12).toString('hex')}`;
    const fields: Record<string, string> = {};
    let stored: Promise<{ bytes: number; filename: string }> | undefined;
    bb.on('field', (name, value) => {
      fields[name] = value;
    });
    bb.on('file', (name, stream, info) => {
      // A truncated body errors this stream as well as busboy: the request is answered from busboy's
      // error (or the store's rejection), and an error event without a listener would crash the process.
      stream.on('error', () => {});
      if (name !== 'file' || stored) {
        stream.resume();
        return;
      }
      stored = d.store
        .put(openaiKeys.file(id), stream, { maxBytes: d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024 })
        .then((p) => ({ bytes: p.bytes, filename: info.filename || 'upload.jsonl' }));
      stored.catch(() => {}); // awaited at close
    });
    bb.on('error', (e) => reject(badRequest(`bad multipart body: ${(e as Error).message}`)));
    bb.on('close', () => {
      void (async () => {
        if (!stored) throw badRequest('the multipart body has no "file" field');
        let put: { bytes: number; filename: string };
        try {
          put = await stored;
        } catch (e) {
          if (e instanceof TooLargeError) throw badRequest(`file exceeds MODELQ_MAX_UPLOAD_MB (${d.cfg.MODELQ_MAX_UPLOAD_MB} MiB)`);
          throw e;
        }
        if (!UPLOAD_PURPOSES.includes(fields.purpose ?? '')) {
          await d.store.delete(openaiKeys.file(id)).catch(() => {});
          throw badRequest(`purpose must be one of ${UPLOAD_PURPOSES.join(', ')}; got ${JSON.stringify(fields.purpose ?? null)}`);
        }
        const now = Math.floor(Date.now() / 1000);
        // Kept as long as batches are (MODELQ_BATCH_TTL), then removed by the workers' cleanup.
        const f: FileRecord = {
          id,
          tenant: principalOf(req).tenant,
          bytes: put.bytes,
          created_at: now,
          expires_at: now + Math.floor(d.cfg.MODELQ_BATCH_TTL / 1000),
          filename: put.filename,
          purpose: fields.purpose!,
        };
        await store.putFile(f);
        return f;
      })().then(resolve, reject);
    });
    // pipeline, not .pipe: a client that goes away mid-upload destroys busboy, which destroys the
    // file stream, so the store's write fails and removes its temp file instead of waiting forever.
    pipeline(req, bb).catch((e: Error) => reject(badRequest(`the upload was aborted or broken: ${e.message}`)));
  });
}

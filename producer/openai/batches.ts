// OpenAI Batches under /openai/v1/batches: create (a validation job on the `batch` queue, which
// then enqueues the chunk flow), retrieve, list with after/limit, cancel; per tenant.
import { randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { BatchStore } from '../../core/batches.ts';
import { batchObject, OPENAI_JOBS, OpenaiStore, requestCounts, type BatchRecord } from '../../core/openai-batch.ts';
import { defaultJobOptions } from '../../core/queues.ts';
import { principalOf } from '../auth.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { OPENAI_BASE } from './base.ts';
import { parseBody } from '../http.ts';

/** What a line's url may be; every line must equal the batch's endpoint, as OpenAI requires. */
export const ENDPOINT = /^\/v2\/models\/[a-z0-9][a-z0-9._-]{0,63}(\/versions\/[A-Za-z0-9._-]{1,64})?\/infer$|^\/v1\/embeddings$/;

/** "24h" as OpenAI takes it; shorter windows ("30m", "90s") are a modelq extension. */
const WINDOW = /^(\d{1,5})(s|m|h)$/;
export function windowSeconds(w: string): number | null {
  const m = WINDOW.exec(w);
  if (!m) return null;
  const s = Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
  return s >= 1 && s <= 24 * 3600 ? s : null;
}

export const createBatchSchema = z.object({
  input_file_id: z.string().min(1).max(100),
  endpoint: z.string().regex(ENDPOINT, 'endpoint must be /v2/models/{name}[/versions/{v}]/infer or /v1/embeddings'),
  completion_window: z.string().refine((w) => windowSeconds(w) !== null, 'completion_window must be 24h or a shorter window such as 30m or 90s'),
  // OpenAI's limits: 16 pairs, keys up to 64 characters, values up to 512.
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, 'metadata may have at most 16 keys')
    .nullish(),
});

export const listBatchesSchema = z.object({
  after: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

export function batchesRouter(d: ProducerDeps, store: OpenaiStore): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  // An OpenAI batch runs as native batches: its progress is theirs.
  const natives = new BatchStore(d.redis, d.prefix);

  const view = async (id: string) => {
    const b = await store.batch(id);
    if (!b) return null;
    const running = b.fields.counts ? [] : (b.record.natives ?? []).filter((n) => n.id);
    const views = await Promise.all(running.map((n) => natives.view(n.id)));
    return batchObject(
      b.record,
      b.fields,
      requestCounts(
        b.record,
        b.fields,
        views.filter((v) => v !== null).map((v) => v.requestCounts),
      ),
    );
  };
  const load = async (req: Request) => {
    const id = String(req.params.id);
    const b = /^batch_[0-9a-f]{24}$/.test(id) ? await store.batch(id) : null;
    if (!b || b.record.tenant !== principalOf(req).tenant) throw notFound(`No such Batch object: ${id.slice(0, 60)}`);
    return b.record;
  };

  r.post(`${OPENAI_BASE}/batches`, json, async (req, res) => {
    const body = parseBody(createBatchSchema, req.body ?? {}, 'body');
    const tenant = principalOf(req).tenant;
    const input = await store.file(body.input_file_id, tenant);
    if (!input) throw notFound(`No such File object: ${body.input_file_id}`);
    if (input.purpose !== 'batch') throw badRequest(`input_file_id ${input.id} has purpose "${input.purpose}"; a batch input needs purpose "batch"`);
    const now = Math.floor(Date.now() / 1000);
    const record: BatchRecord = {
      id: `batch_${randomBytes(12).toString('hex')}`,
      tenant,
      endpoint: body.endpoint,
      input_file_id: input.id,
      completion_window: body.completion_window,
      metadata: body.metadata ?? null,
      created_at: now,
      expires_at: now + windowSeconds(body.completion_window)!,
    };
    await store.createBatch(record);
    await d.queues.queue('batch').add(OPENAI_JOBS.validate, { batchId: record.id }, { ...defaultJobOptions.batch, jobId: `${record.id}-validate` });
    d.logger.info({ batch: record.id, endpoint: record.endpoint, file: input.id }, 'openai batch accepted');
    res.json(await view(record.id));
  });

  r.get(`${OPENAI_BASE}/batches`, async (req, res) => {
    const q = parseBody(listBatchesSchema, req.query, 'query');
    const page = await store.page('batches', principalOf(req).tenant, q.after, q.limit);
    const data = (await Promise.all(page.ids.map(view))).filter((b) => b !== null);
    res.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore });
  });

  r.get(`${OPENAI_BASE}/batches/:id`, async (req, res) => void res.json(await view((await load(req)).id)));

  r.post(`${OPENAI_BASE}/batches/:id/cancel`, async (req, res) => {
    const b = await load(req);
    const prev = await store.transition(b.id, 'cancelling', ['validating', 'in_progress']);
    if (!prev && (await store.status(b.id)) !== 'cancelling') {
      throw new AppError('conflict', `batch ${b.id} is ${await store.status(b.id)}; only a validating or in_progress batch can be cancelled`);
    }
    // Its native batches are cancelled too: chunks not yet started skip, running ones stop; the
    // finalizer then moves it to cancelled with what was scored.
    const live = (await store.batch(b.id))?.record.natives ?? [];
    for (const n of live) if (n.id) await natives.transition(n.id, 'cancelling', ['queued', 'running']);
    res.json(await view(b.id));
  });

  return r;
}

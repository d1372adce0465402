// /v1/batches: bulk scoring of large files. The routes only wire: accepting a file
// (producer/batches/accept.ts, multipart.ts), reading outputs (download.ts) and status events
// (events.ts) live beside it, one concern per module.
import { Router, type Request } from 'express';
import { z } from 'zod';
import { BatchStore } from '../../core/batches.ts';
import { AppError, notFound } from '../../core/errors.ts';
import { TooLargeError } from '../../core/storage/index.ts';
import { acceptBatch, batchParamsSchema, publicView } from '../batches/accept.ts';
import { declaredByContentType } from '../batches/sniff.ts';
import { sendParts } from '../batches/download.ts';
import { streamEvents } from '../batches/events.ts';
import { acceptMultipart } from '../batches/multipart.ts';
import { acceptByReference } from '../batches/by-reference.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { principalOf } from '../auth.ts';
import { parseBody, sendStream } from '../http.ts';
import { batchKeys } from '../../core/jobs/batch.ts';

export { batchParamsSchema };

export const listQuerySchema = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
});

export function batchesRouter(d: ProducerDeps): Router {
  const r = Router();
  const batches = new BatchStore(d.redis, d.prefix);
  const json = jsonBody(d.cfg);
  /** A JSON body without `?model=` names its input in storage; with it, the body is the uploaded JSONL. */
  const byReference = (req: Request) => req.query.model === undefined && !!req.is('application/json');

  r.post('/v1/batches', (req, res, next) => (byReference(req) ? json(req, res, next) : next()));
  r.post('/v1/batches', async (req, res) => {
    const tenant = principalOf(req).tenant;
    if (byReference(req)) return void res.status(202).json(await acceptByReference(d, req.body, tenant));
    if (req.is('multipart/form-data')) return void res.status(202).json(await acceptMultipart(d, req, tenant));
    const params = parseBody(batchParamsSchema, req.query, 'query');
    res.status(202).json(await acceptBatch(d, params, req, declaredByContentType(req.headers['content-type']), tenant));
  });

  /** Another tenant's batch is "not found", not "forbidden": its existence is not told. */
  const load = async (req: Request) => {
    const id = String(req.params.id);
    if (!/^batch_[0-9a-f]{20}$/.test(id)) throw notFound(`batch "${id.slice(0, 60)}" not found`);
    const v = await batches.view(id);
    if (!v || (v.spec.tenant ?? 'default') !== principalOf(req).tenant) throw notFound(`batch "${id}" not found`);
    return v;
  };

  r.get('/v1/batches', async (req, res) => {
    const q = parseBody(listQuerySchema, req.query, 'query');
    const tenant = principalOf(req).tenant;
    const [ids, total] = await Promise.all([batches.list(tenant, q.offset, q.limit), batches.count(tenant)]);
    const views = (await Promise.all(ids.map((id) => batches.view(id)))).filter((v) => v !== null).map((v) => publicView(v));
    res.json({ data: views, total, offset: q.offset, limit: q.limit });
  });

  r.get('/v1/batches/:id', async (req, res) => void res.json(publicView(await load(req))));

  r.post('/v1/batches/:id/cancel', async (req, res) => {
    const v = await load(req);
    const prev = await batches.transition(v.id, 'cancelling', ['queued', 'running']);
    if (!prev) {
      const now = await batches.status(v.id);
      if (now === 'cancelling') return void res.status(202).json(publicView((await batches.view(v.id))!));
      throw new AppError('conflict', `batch ${v.id} is ${now}; only a queued or running batch can be cancelled`);
    }
    // Chunks not yet started will see the status and skip; when all are done the parent finalizes.
    res.status(202).json(publicView((await batches.view(v.id))!));
  });

  for (const kind of ['output', 'errors'] as const) {
    r.get(`/v1/batches/:id/${kind}`, async (req, res) => {
      const v = await load(req);
      const scored = new Set((await batches.outcomes(v.id)).keys());
      await sendParts(req, res, d, v, kind, scored);
    });
  }

  // A shadow batch's comparison report and the rows where the two versions differ (made when it completes).
  const comparison = async (req: Request) => {
    const v = await load(req);
    if (!v.spec.shadow) throw notFound(`batch ${v.id} has no comparison: it was not submitted with shadowVersion`);
    if (v.status !== 'completed') throw new AppError('conflict', `batch ${v.id} is ${v.status}; its comparison is made when it completes`);
    return v;
  };
  r.get('/v1/batches/:id/comparison', async (req, res) => {
    const v = await comparison(req);
    const key = batchKeys.comparison(v.id);
    if (!(await d.store.stat(key))) throw notFound(`the comparison of batch ${v.id} is no longer there (expired or removed)`);
    const parts: Buffer[] = [];
    for await (const b of await d.store.read(key)) parts.push(b as Buffer);
    res.type('application/json').send(Buffer.concat(parts));
  });
  r.get('/v1/batches/:id/comparison/diff', async (req, res) => {
    const v = await comparison(req);
    const key = batchKeys.comparisonDiff(v.id);
    const st = await d.store.stat(key);
    if (!st) throw notFound(`the comparison of batch ${v.id} is no longer there (expired or removed)`);
    res.setHeader('Content-Type', 'application/x-ndjson');
    res.setHeader('Content-Disposition', `attachment; filename="${v.id}-comparison-diff.jsonl"`);
    res.setHeader('Content-Length', String(st.bytes));
    await sendStream(res, await d.store.read(key), d.logger, { batch: v.id, kind: 'comparison-diff' });
  });

  r.get('/v1/batches/:id/events', async (req, res) => streamEvents(req, res, batches, await load(req)));

  return r;
}

export { TooLargeError };

// /v1/datasets: training data. The upload streams to the artifact store, then the stored file is read
// back once to count rows and infer column types; a malformed file is a 400 naming the line and
// leaves nothing behind.
import { Router } from 'express';
import { z } from 'zod';
import path from 'node:path';
import { DatasetStore, datasetKey, newDatasetId, type DatasetFormat, type DatasetRecord } from '../../core/datasets.ts';
import { badRequest, notFound } from '../../core/errors.ts';
import type { ProducerDeps } from '../deps.ts';
import { principalOf } from '../auth.ts';
import { profileInThread } from './profiler.ts';
import { parseBody } from '../http.ts';

export const datasetParamsSchema = z.object({
  format: z.enum(['csv', 'jsonl']).optional().meta({ description: 'Default: csv for text/csv bodies, else jsonl' }),
  name: z.string().min(1).max(200).optional().meta({ description: 'A label for people; default "dataset"' }),
});

export const datasetListQuerySchema = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
});

/** What clients see: the record without its storage key. */
export const publicDataset = ({ key: _key, ...r }: DatasetRecord) => r;

export function datasetsRouter(d: ProducerDeps): Router {
  const r = Router();
  const datasets = new DatasetStore(d.redis, d.prefix);

  r.post('/v1/datasets', async (req, res) => {
    if (req.is('multipart/form-data')) throw badRequest('send the file as the raw request body, not multipart');
    const params = parseBody(datasetParamsSchema, req.query, 'query');
    const format: DatasetFormat = params.format ?? (req.is('text/csv') ? 'csv' : 'jsonl');
    const id = newDatasetId();
    const key = datasetKey(id, format);
    try {
      const put = await d.store.put(key, req, { maxBytes: d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024 });
      if (put.bytes === 0) throw badRequest('the file is empty');
      // In a thread of its own: parsing every row here would stall online inference on this event loop.
      const store = { ...d.cfg, MODELQ_DATA_DIR: path.resolve(d.cfg.MODELQ_DATA_DIR) };
      const profile = await profileInThread({ store, key, format, maxRowBytes: d.cfg.MODELQ_MAX_ROW_BYTES });
      if (profile.rows === 0) throw badRequest('the file has no rows');
      const record: DatasetRecord = {
        id,
        name: params.name ?? 'dataset',
        format,
        key,
        bytes: put.bytes,
        ...profile,
        createdAt: new Date().toISOString(),
        tenant: principalOf(req).tenant,
      };
      await datasets.create(record);
      d.logger.info({ dataset: id, rows: profile.rows, columns: profile.columns.length }, 'dataset stored');
      res.status(201).json(publicDataset(record));
    } catch (e) {
      await d.store.deletePrefix(`datasets/${id}`).catch(() => {});
      throw e;
    }
  });

  r.get('/v1/datasets', async (req, res) => {
    const q = parseBody(datasetListQuerySchema, req.query, 'query');
    const { data, total } = await datasets.list(principalOf(req).tenant, q.offset, q.limit);
    res.json({ data: data.map(publicDataset), total, offset: q.offset, limit: q.limit });
  });

  r.get('/v1/datasets/:id', async (req, res) => {
    const rec = await datasets.getFor(req.params.id, principalOf(req).tenant);
    if (!rec) throw notFound(`dataset "${req.params.id.slice(0, 60)}" not found`);
    res.json(publicDataset(rec));
  });

  return r;
}

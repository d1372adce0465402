// Payload logs over HTTP (core/payload-logs.ts): the per-model and per-alias setting
// (`PUT|GET|DELETE /v1/models/{name}/logging`, `.../aliases/{alias}/logging`), the records of a time
// range as JSON lines (`GET /v1/models/{name}/logs`), and a range made a dataset
// (`POST /v1/models/{name}/logs/dataset`) that training can use like an uploaded one. Only the
// model's owner (or the platform) reads its logs: a shared model's logs hold other tenants' requests.
import path from 'node:path';
import { Router, type Request } from 'express';
import { z } from 'zod';
import { isPlatform } from '../../core/auth.ts';
import { DatasetStore, datasetKey, newDatasetId, type DatasetRecord } from '../../core/datasets.ts';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { LoggingConfigs, loggingConfigSchema, readLogRecords, type LogScope, type PayloadRecord, type TimeRange } from '../../core/payload-logs.ts';
import { checkName } from '../../core/registry.ts';
import { principalOf } from '../auth.ts';
import { jsonBody } from '../body.ts';
import { publicDataset } from '../datasets/routes.ts';
import { profileInThread } from '../datasets/profiler.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { inferenceFor } from '../inference/service.ts';
import { assertReadable, assertWritable } from '../model-access.ts';
import { timeQuery } from './audit.ts';

const range = {
  from: timeQuery.optional(),
  to: timeQuery.optional(),
  version: z.coerce.number().int().min(1).max(999_999_999).optional(),
};
export const logsQuerySchema = z.object({ ...range, limit: z.coerce.number().int().min(1).max(10_000).default(1000) }).strict();
export const logsDatasetQuerySchema = z
  .object({ ...range, limit: z.coerce.number().int().min(1).max(1_000_000).default(100_000), name: z.string().min(1).max(200).optional() })
  .strict();

/** A record as the API shows it: the payload as JSON, the time as ISO. */
const recordView = (r: PayloadRecord) => ({
  ...r,
  time: new Date(r.time).toISOString(),
  inputs: r.inputs === null ? null : (JSON.parse(r.inputs) as unknown),
  outputs: r.outputs === null ? null : (JSON.parse(r.outputs) as unknown),
});

interface LoggedTensor {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown[];
}

/**
 * The rows of one logged request as dataset records: one per row of its first dimension, a column per
 * input (`<name>` when one value a row, `<name>_<j>` otherwise), per output (`output_<name>...`), and
 * `request_id`, `time`, `version`.
 */
export function datasetRows(r: PayloadRecord): Record<string, unknown>[] {
  if (r.inputs === null) return [];
  const tensors: [string, LoggedTensor][] = [
    ...(JSON.parse(r.inputs) as LoggedTensor[]).map((t): [string, LoggedTensor] => [t.name, t]),
    ...(r.outputs === null ? [] : (JSON.parse(r.outputs) as LoggedTensor[]).map((t): [string, LoggedTensor] => [`output_${t.name}`, t])),
  ];
  const n = Math.max(1, ...tensors.map(([, t]) => (t.shape.length > 1 ? t.shape[0]! : 1)));
  const rows = Array.from(
    { length: n },
    () => ({ request_id: r.request_id, time: new Date(r.time).toISOString(), version: r.version }) as Record<string, unknown>,
  );
  for (const [col, t] of tensors) {
    const rowsOf = t.shape.length > 1 ? t.shape[0]! : 1;
    const width = rowsOf > 0 ? Math.floor(t.data.length / rowsOf) : 0;
    for (let i = 0; i < Math.min(n, rowsOf); i++) {
      const vals = t.data.slice(i * width, (i + 1) * width);
      if (vals.length === 1) rows[i]![col] = vals[0];
      else vals.forEach((v, j) => (rows[i]![`${col}_${j}`] = v));
    }
  }
  return rows;
}

export function logsRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  const configs = new LoggingConfigs(d.redis, d.prefix);
  const datasets = new DatasetStore(d.redis, d.prefix);

  /** The alias must exist: a setting on no alias would never apply. */
  const aliasOf = async (req: Request): Promise<string | null> => {
    const alias = (req.params as Record<string, string>).alias;
    if (alias === undefined) return null;
    await d.registry.aliasOf(req.params.name as string, alias);
    return alias;
  };

  const paths = ['/v1/models/:name/logging', '/v1/models/:name/aliases/:alias/logging'];
  for (const p of paths) {
    r.get(p, async (req, res) => {
      const name = checkName(req.params.name as string);
      await assertReadable(d.registry, name, principalOf(req));
      await d.registry.getModel(name);
      const alias = await aliasOf(req);
      res.json({ name, alias, logging: await configs.get(name, alias) });
    });
    r.put(p, json, async (req, res) => {
      const cfg = parseBody(loggingConfigSchema, req.body);
      const name = checkName(req.params.name as string);
      if (!(await assertWritable(d.registry, name, principalOf(req), 'admin'))) throw notFound(`model "${name}" not found`);
      const alias = await aliasOf(req);
      await configs.set(name, alias, cfg);
      inferenceFor(d).payloads.forget(name);
      res.json({ name, alias, logging: cfg });
    });
    r.delete(p, async (req, res) => {
      const name = checkName(req.params.name as string);
      if (!(await assertWritable(d.registry, name, principalOf(req), 'admin'))) throw notFound(`model "${name}" not found`);
      const alias = await aliasOf(req);
      await configs.set(name, alias, null);
      inferenceFor(d).payloads.forget(name);
      res.status(204).end();
    });
  }

  /** The owner's scope of the model's logs; others are refused. */
  const ownScope = async (req: Request, version: number | undefined): Promise<LogScope> => {
    const name = checkName(req.params.name as string);
    const p = principalOf(req);
    await assertReadable(d.registry, name, p);
    const a = await d.registry.access(name);
    if (!a) throw notFound(`model "${name}" not found`);
    if (a.owner !== p.tenant && !isPlatform(p)) throw new AppError('forbidden', `only the owner of model "${name}" reads its payload logs`);
    return { tenant: a.owner, model: name, ...(version !== undefined ? { version } : {}) };
  };
  const timeRange = (q: { from?: number; to?: number }): TimeRange => {
    if (q.from !== undefined && q.to !== undefined && q.from > q.to) throw badRequest('from must not be after to');
    return { ...(q.from !== undefined ? { from: q.from } : {}), ...(q.to !== undefined ? { to: q.to } : {}) };
  };

  r.get('/v1/models/:name/logs', async (req, res) => {
    const q = parseBody(logsQuerySchema, req.query, 'query');
    const scope = await ownScope(req, q.version);
    const records = readLogRecords(d.store, scope, timeRange(q), q.limit);
    // The first part is read before the answer starts, so a broken store is an error status, not a cut stream.
    const first = await records.next();
    res.type('application/x-ndjson');
    if (!first.done) res.write(`${JSON.stringify(recordView(first.value))}\n`);
    try {
      for await (const rec of records) {
        if (req.socket.destroyed) break;
        if (!res.write(`${JSON.stringify(recordView(rec))}\n`)) await new Promise((ok) => res.once('drain', ok));
      }
    } catch (e) {
      d.logger.warn({ err: (e as Error).message, model: scope.model }, 'payload log read failed mid-answer');
      return void res.destroy();
    }
    res.end();
  });

  r.post('/v1/models/:name/logs/dataset', async (req, res) => {
    const q = parseBody(logsDatasetQuerySchema, req.query, 'query');
    const scope = await ownScope(req, q.version);
    const id = newDatasetId();
    const key = datasetKey(id, 'jsonl');
    let records = 0;
    async function* lines() {
      for await (const rec of readLogRecords(d.store, scope, timeRange(q), q.limit)) {
        records++;
        const rows = datasetRows(rec);
        if (rows.length) yield Buffer.from(rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
      }
    }
    try {
      const put = await d.store.put(key, lines(), { maxBytes: d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024 });
      if (put.bytes === 0) throw badRequest(records ? 'the logged records in this range have no payload (truncated)' : 'no payload log records in this range');
      const store = { ...d.cfg, MODELQ_DATA_DIR: path.resolve(d.cfg.MODELQ_DATA_DIR) };
      const profile = await profileInThread({ store, key, format: 'jsonl', maxRowBytes: d.cfg.MODELQ_MAX_ROW_BYTES });
      const record: DatasetRecord = {
        id,
        name: q.name ?? `${scope.model} payload log`,
        format: 'jsonl',
        key,
        bytes: put.bytes,
        ...profile,
        createdAt: new Date().toISOString(),
        tenant: principalOf(req).tenant,
      };
      await datasets.create(record);
      res.status(201).json({ ...publicDataset(record), logRecords: records });
    } catch (e) {
      await d.store.deletePrefix(`datasets/${id}`).catch(() => {});
      throw e;
    }
  });

  return r;
}

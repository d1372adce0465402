// /v1/batches: bulk scoring of large files. The upload streams to the artifact store while rows are
// counted and chunk boundaries recorded; then one BullMQ flow (a `finalize` parent, one `score`
// child per chunk) is enqueued. Outputs are read back part by part, in input order.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { BatchStore, type BatchView } from '../../core/batches.ts';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { batchKeys, type BatchSpec } from '../../core/jobs/batch.ts';
import { batchChunkJobOptions, defaultJobOptions } from '../../core/queues.ts';
import { checkCsvHeader } from '../../core/rows/parse.ts';
import { RowScanner, type RowFormat, type ScanResult } from '../../core/rows/scanner.ts';
import { TooLargeError } from '../../core/storage/index.ts';
import type { ProducerDeps } from '../deps.ts';
import { principalOf } from '../auth.ts';
import { assertReadable } from '../model-access.ts';
import { parseBody } from '../http.ts';

export const batchParamsSchema = z.object({
  model: z.string().min(1).max(200).meta({ description: 'Model reference: name, name@alias or name@3' }),
  format: z.enum(['jsonl', 'csv']).optional().meta({ description: 'Default: csv for text/csv bodies and .csv files, else jsonl' }),
  chunkRows: z.coerce.number().int().min(1).max(100_000).optional().meta({ description: 'Rows per chunk job (default MODELQ_BATCH_CHUNK_ROWS)' }),
  metadata: z.string().max(4096).optional().meta({ description: 'A JSON object of string values, kept with the batch' }),
  device: z.enum(['cpu', 'gpu']).optional().meta({ description: 'gpu: chunks go to the score-gpu queue, which only workers with MODELQ_DEVICE=cuda take' }),
});
type BatchParams = z.infer<typeof batchParamsSchema>;

export const listQuerySchema = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(20),
});

const publicView = ({ spec: _spec, ...v }: BatchView & { spec?: BatchSpec }) => v;

function parseMetadata(s: string | undefined): Record<string, string> | undefined {
  if (s === undefined) return undefined;
  let v: unknown;
  try { v = JSON.parse(s); } catch { throw badRequest('metadata must be a JSON object of string values'); }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string')) {
    throw badRequest('metadata must be a JSON object of string values');
  }
  return v as Record<string, string>;
}

/** Passes the bytes through while the scanner counts rows and marks chunk boundaries. */
async function* scanned(source: AsyncIterable<Buffer>, scanner: RowScanner): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    try {
      scanner.push(chunk);
    } catch (e) {
      if (e instanceof RangeError) throw badRequest(`the file has ${e.message}; the limit is MODELQ_BATCH_MAX_ROWS`);
      throw e;
    }
    yield chunk;
  }
}

export function batchesRouter(d: ProducerDeps): Router {
  const r = Router();
  const batches = new BatchStore(d.redis, d.prefix);

  /** Streams one file to the store and enqueues its flow. */
  async function accept(params: BatchParams, body: AsyncIterable<Buffer>, formatHint: RowFormat, tenant: string): Promise<BatchView> {
    await assertReadable(d.registry, params.model, tenant); // another tenant's private model is "not found"
    const model = await d.registry.resolve(params.model);
    const format = params.format ?? formatHint;
    const chunkRows = params.chunkRows ?? d.cfg.MODELQ_BATCH_CHUNK_ROWS;
    const metadata = parseMetadata(params.metadata);
    const id = `batch_${randomBytes(10).toString('hex')}`;
    const inputKey = batchKeys.input(id);
    const scanner = new RowScanner(format, { chunkRows, maxRows: d.cfg.MODELQ_BATCH_MAX_ROWS });
    let scan: ScanResult;
    try {
      await d.store.put(inputKey, scanned(body, scanner), { maxBytes: d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024 });
      scan = scanner.end();
      if (scan.rows === 0) throw badRequest(scan.bytes === 0 ? 'the file is empty' : 'the file has no rows');
      if (format === 'csv') {
        const problem = checkCsvHeader(scan.header ?? '', model.inputs);
        if (problem) throw badRequest(problem);
      }
      const now = Date.now();
      const spec: BatchSpec = {
        id, tenant, model: { name: model.name, version: model.version, sha256: model.sha256, inputs: model.inputs, outputs: model.outputs },
        format, inputKey, bytes: scan.bytes, totalRows: scan.rows, chunks: scan.chunks.length, chunkRows,
        ...(scan.header !== undefined ? { header: scan.header } : {}), ...(metadata ? { metadata } : {}),
        createdAt: new Date(now).toISOString(), expiresAt: new Date(now + d.cfg.MODELQ_BATCH_TTL).toISOString(),
      };
      await batches.create(spec);
      await d.queues.flowProducer().add({
        name: 'finalize', queueName: 'batch', data: { batchId: id },
        opts: { ...defaultJobOptions.batch, jobId: id },
        children: scan.chunks.map((c) => ({
          name: 'score', queueName: params.device === 'gpu' ? 'score-gpu' : 'score',
          data: { batchId: id, index: c.index, start: c.start, end: c.end, firstRow: c.firstRow, rows: c.rows },
          opts: batchChunkJobOptions(params.device === 'gpu' ? 'score-gpu' : 'score', `${id}-${c.index}`),
        })),
      });
    } catch (e) {
      // Not accepted: leave nothing behind.
      await d.store.deletePrefix(batchKeys.dir(id)).catch(() => {});
      await batches.remove(id).catch(() => {});
      throw e;
    }
    d.logger.info({ batch: id, model: `${model.name}@${model.version}`, rows: scan.rows, chunks: scan.chunks.length }, 'batch accepted');
    return publicView((await batches.view(id))!);
  }

  r.post('/v1/batches', async (req, res) => {
    const tenant = principalOf(req).tenant;
    if (req.is('multipart/form-data')) return void res.status(202).json(await acceptMultipart(req, tenant));
    const params = parseBody(batchParamsSchema, req.query, 'query');
    const hint: RowFormat = req.is('text/csv') ? 'csv' : 'jsonl';
    res.status(202).json(await accept(params, req, hint, tenant));
  });

  /** multipart/form-data: a `file` field; other fields (model, format, chunkRows, metadata) must come before it. */
  function acceptMultipart(req: Request, tenant: string): Promise<BatchView> {
    return new Promise((resolve, reject) => {
      let bb: busboy.Busboy;
      try {
        bb = busboy({ headers: req.headers, limits: { files: 1, fields: 20, fieldSize: 8192 } });
      } catch (e) {
        return reject(badRequest(`bad multipart body: ${(e as Error).message}`));
      }
      const fields: Record<string, string> = { ...(req.query as Record<string, string>) };
      let started = false;
      bb.on('field', (name, value) => {
        if (started) return reject(badRequest(`form field "${name}" must come before the file field`));
        fields[name] = value;
      });
      bb.on('file', (name, stream, info) => {
        if (name !== 'file' || started) {
          stream.resume();
          return reject(badRequest(`unexpected file field "${name}"; send the file as "file"`));
        }
        started = true;
        let params: BatchParams;
        try {
          params = parseBody(batchParamsSchema, fields, 'form');
        } catch (e) {
          stream.resume();
          return reject(e);
        }
        const hint: RowFormat = info.mimeType === 'text/csv' || /\.csv$/i.test(info.filename ?? '') ? 'csv' : 'jsonl';
        accept(params, stream, hint, tenant).then(resolve, reject);
      });
      bb.on('error', (e) => reject(badRequest(`bad multipart body: ${(e as Error).message}`)));
      bb.on('close', () => { if (!started) reject(badRequest('the multipart body has no "file" field')); });
      req.pipe(bb);
    });
  }

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

  const parts = (kind: 'output' | 'errors') => async (req: Request, res: Response) => {
    const v = await load(req);
    const csv = kind === 'output' && req.query.format === 'csv';
    if (req.query.format !== undefined && !['csv', 'jsonl'].includes(String(req.query.format))) throw badRequest('format must be jsonl or csv');
    res.setHeader('Content-Type', csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
    res.setHeader('Content-Disposition', `attachment; filename="${v.id}-${kind}.${csv ? 'csv' : 'jsonl'}"`);
    const store = d.store;
    async function* lines() {
      for (let i = 0; i < v.chunks.total; i++) {
        const key = kind === 'output' ? batchKeys.output(v.id, i) : batchKeys.errors(v.id, i);
        if (!(await store.stat(key))) continue; // not scored (cancelled or still running)
        for await (const b of await store.read(key)) yield b as Buffer;
      }
    }
    const source = csv ? toCsv(lines(), v.spec.model.outputs.map((o) => o.name)) : lines();
    Readable.from(source).pipe(res);
  };
  r.get('/v1/batches/:id/output', parts('output'));
  r.get('/v1/batches/:id/errors', parts('errors'));

  r.get('/v1/batches/:id/events', async (req, res) => {
    let v = await load(req);
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
    let last = '';
    let closed = false;
    req.on('close', () => { closed = true; });
    while (!closed) {
      const data = JSON.stringify(publicView(v));
      if (data !== last) res.write(`event: status\ndata: ${data}\n\n`);
      last = data;
      if (BatchStore.isFinal(v.status)) break;
      await new Promise((r2) => setTimeout(r2, 500));
      v = (await batches.view(v.id)) ?? v;
    }
    res.end();
  });

  return r;
}

/** JSONL output lines -> CSV: row, id, then each output's values as <name>_<i> columns. */
async function* toCsv(source: AsyncIterable<Buffer>, names: string[]): AsyncGenerator<string> {
  let rest = '';
  let header = false;
  const cell = (x: unknown) => {
    const s = x === undefined || x === null ? '' : typeof x === 'string' ? x : JSON.stringify(x);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  for await (const b of source) {
    const text = rest + b.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    let out = '';
    for (const l of lines) {
      if (!l) continue;
      const o = JSON.parse(l) as { row: number; id?: unknown; outputs: Record<string, unknown[]> };
      if (!header) {
        out += ['row', 'id', ...names.flatMap((n) => (o.outputs[n] ?? []).map((_, i) => `${n}_${i}`))].join(',') + '\n';
        header = true;
      }
      out += [o.row, cell(o.id), ...names.flatMap((n) => o.outputs[n] ?? [])].join(',') + '\n';
    }
    if (out) yield out;
  }
}

export { TooLargeError };

// POST /v1/jobs/compress: a compression job for a model version, measured on the dataset named, the
// `samples` uploaded with it, or the model's training dataset from its lineage (generated inputs
// when there is none). The job is read back through the jobs resource (GET /v1/jobs/{id}).
import { randomBytes } from 'node:crypto';
import { Router, type Request, type RequestHandler } from 'express';
import { DatasetStore, isNumericType, type DatasetRecord } from '../../core/datasets.ts';
import { trainingDatasetId } from '../../core/lineage.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import { compressRequestSchema, methodOptions, type CompressJob, type SamplesRef } from '../../core/jobs/compress.ts';
import { isPlatform } from '../../core/auth.ts';
import { principalOf } from '../auth.ts';
import { assertReadable, assertWritable } from '../model-access.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { readCompressForm } from './compress-form.ts';

export function compressRouter(d: ProducerDeps): Router {
  const r = Router();
  // JSON, or multipart with the JSON as `request` and a `samples` file (compress-form.ts).
  const body = jsonBody(d.cfg);
  const eitherBody: RequestHandler = (req, res, next) => (req.is('multipart/form-data') ? next() : body(req, res, next));
  r.post('/v1/jobs/compress', eitherBody, async (req, res) => {
    const id = `compress_${randomBytes(10).toString('hex')}`;
    const form = req.is('multipart/form-data') ? await readCompressForm(d, req, id) : { body: req.body as unknown };
    try {
      const job = await compressJob(d, req, form.body, form.samples);
      await d.queues.queue('compress').add('compress', job, { jobId: id });
      res
        .status(202)
        .json({ id, kind: 'compress', state: 'queued', model: job.model, method: job.method, ...(job.dataset ? { dataset: job.dataset.id } : {}) });
    } catch (e) {
      if (form.samples) await d.store.delete(form.samples.key).catch(() => {});
      throw e;
    }
  });
  return r;
}

/** The request checked against the registry and datasets, as the job's data. */
async function compressJob(d: ProducerDeps, req: Request, raw: unknown, samples: SamplesRef | undefined): Promise<CompressJob> {
  const body = parseBody(compressRequestSchema, raw);
  const options = methodOptions[body.method].safeParse(body.options ?? {});
  if (!options.success) {
    const i = options.error.issues[0]!;
    throw new AppError('bad_request', `body.options${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message} (method ${body.method})`);
  }
  const who = principalOf(req);
  const tenant = who.tenant;
  await assertReadable(d.registry, body.model, who);
  const model = await d.registry.resolve(body.model);
  if (model.pipeline) throw badRequest(`${model.name}@${model.version} is a pipeline: compress its steps' models instead`);
  // The result becomes a version of registerAs (default: the parent's name): refused here, not when the job ends.
  await assertWritable(d.registry, body.registerAs ?? model.name, who, 'publish');
  if (samples && body.dataset) throw badRequest('samples: give a dataset or samples to measure on, not both');
  const datasets = new DatasetStore(d.redis, d.prefix);
  // No data named: the model's training dataset (from its lineage), where it still exists.
  let fromLineage = false;
  let ds: DatasetRecord | null = null;
  if (body.dataset) {
    ds = await datasets.getFor(body.dataset, tenant);
    if (!ds) throw badRequest(`dataset: no dataset "${body.dataset.slice(0, 100)}"`);
  } else if (!samples) {
    const trained = await trainingDatasetId(d.registry, model);
    ds = trained ? await datasets.getFor(trained, tenant) : null;
    fromLineage = ds !== null;
  }
  if (body.method === 'distill' && !ds)
    throw badRequest("dataset: distill needs a dataset (the model's lineage names none); the teacher labels its rows and the student learns from them");
  if (!ds && (body.features || body.target)) throw badRequest(`${body.features ? 'features' : 'target'}: names dataset columns, but no dataset was given`);
  let dataset: CompressJob['dataset'];
  if (ds) {
    const types = new Map(ds.columns.map((c) => [c.name, c.type]));
    // String inputs (a text model's) are fed text columns, a float input numbers.
    const text = model.inputs.find((i) => i.datatype === 'BYTES');
    const numbers = model.inputs.some((i) => i.datatype !== 'BYTES');
    body.features?.forEach((f, i) => {
      const t = types.get(f);
      if (!t) throw badRequest(`features[${i}]: the dataset has no column "${f}"`);
      if (!isNumericType(t) && !text) throw badRequest(`features[${i}]: column "${f}" is not numeric (type ${t})`);
      if (isNumericType(t) && !numbers) throw badRequest(`features[${i}]: column "${f}" holds numbers; the model's input "${text!.name}" takes strings`);
    });
    if (body.target && !types.has(body.target)) throw badRequest(`target: the dataset has no column "${body.target}"`);
    dataset = { id: ds.id, key: ds.key, format: ds.format, rows: ds.rows, ...(fromLineage ? { fromLineage: true } : {}) };
  }
  return {
    model: { name: model.name, version: model.version, sha256: model.sha256 },
    method: body.method,
    options: options.data as Record<string, unknown>,
    ...(dataset ? { dataset } : {}),
    ...(samples ? { samples } : {}),
    ...(body.features ? { features: body.features } : {}),
    ...(body.target ? { target: body.target } : {}),
    registerAs: body.registerAs ?? model.name,
    ...(body.tolerance ? { tolerance: body.tolerance } : {}),
    ...(body.allowSlower ? { allowSlower: true } : {}),
    tenant,
    keyId: who.keyId,
    platform: isPlatform(who),
  };
}

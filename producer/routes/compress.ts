// POST /v1/jobs/compress: a compression job for a model version. The job is read back through the
// jobs resource (GET /v1/jobs/{id}) like a training job.
import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { DatasetStore, isNumericType } from '../../core/datasets.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import { compressRequestSchema, methodOptions, type CompressJob } from '../../core/jobs/compress.ts';
import { isPlatform } from '../../core/auth.ts';
import { principalOf } from '../auth.ts';
import { assertReadable, assertWritable } from '../model-access.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';

export function compressRouter(d: ProducerDeps): Router {
  const r = Router();
  r.post('/v1/jobs/compress', jsonBody(d.cfg), async (req, res) => {
    const body = parseBody(compressRequestSchema, req.body);
    const options = methodOptions[body.method].safeParse(body.options ?? {});
    if (!options.success) {
      const i = options.error.issues[0]!;
      throw new AppError('bad_request', `body.options${i.path.length ? `.${i.path.join('.')}` : ''}: ${i.message} (method ${body.method})`);
    }
    const who = principalOf(req);
    const tenant = who.tenant;
    await assertReadable(d.registry, body.model, who);
    const model = await d.registry.resolve(body.model);
    // The result becomes a version of registerAs (default: the parent's name): refused here, not when the job ends.
    await assertWritable(d.registry, body.registerAs ?? model.name, who, 'publish');
    if (body.method === 'distill' && !body.dataset)
      throw badRequest('dataset: distill needs a dataset; the teacher labels its rows and the student learns from them');
    if (!body.dataset && (body.features || body.target))
      throw badRequest(`${body.features ? 'features' : 'target'}: names dataset columns, but no dataset was given`);
    let dataset: CompressJob['dataset'];
    if (body.dataset) {
      const ds = await new DatasetStore(d.redis, d.prefix).getFor(body.dataset, tenant);
      if (!ds) throw badRequest(`dataset: no dataset "${body.dataset.slice(0, 100)}"`);
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
      dataset = { id: ds.id, key: ds.key, format: ds.format, rows: ds.rows };
    }
    const id = `compress_${randomBytes(10).toString('hex')}`;
    const data: CompressJob = {
      model: { name: model.name, version: model.version, sha256: model.sha256 },
      method: body.method,
      options: options.data as Record<string, unknown>,
      ...(dataset ? { dataset } : {}),
      ...(body.features ? { features: body.features } : {}),
      ...(body.target ? { target: body.target } : {}),
      registerAs: body.registerAs ?? model.name,
      ...(body.tolerance ? { tolerance: body.tolerance } : {}),
      ...(body.allowSlower ? { allowSlower: true } : {}),
      tenant,
      keyId: who.keyId,
      platform: isPlatform(who),
    };
    await d.queues.queue('compress').add('compress', data, { jobId: id });
    res.status(202).json({ id, kind: 'compress', state: 'queued', model: { name: model.name, version: model.version }, method: body.method });
  });
  return r;
}

// POST /v1/jobs/compress: a compression job for a model version. The job is read back through the
// jobs resource (GET /v1/jobs/{id}) like a training job.
import { randomBytes } from 'node:crypto';
import { Router } from 'express';
import { AppError } from '../../core/errors.ts';
import { compressRequestSchema, methodOptions, type CompressJob } from '../../core/jobs/compress.ts';
import { principalOf } from '../auth.ts';
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
    const model = await d.registry.resolve(body.model);
    const id = `compress_${randomBytes(10).toString('hex')}`;
    const data: CompressJob = {
      model: { name: model.name, version: model.version, sha256: model.sha256 }, method: body.method,
      options: options.data as Record<string, unknown>, ...(body.dataset ? { dataset: body.dataset } : {}),
      registerAs: body.registerAs ?? model.name, tenant: principalOf(req).tenant,
    };
    await d.queues.queue('compress').add('compress', data, { jobId: id });
    res.status(202).json({ id, kind: 'compress', state: 'queued', model: { name: model.name, version: model.version }, method: body.method });
  });
  return r;
}

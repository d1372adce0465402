// /v1/models: the model registry over HTTP. Uploads are streamed to the store, checked by a worker's
// engine (the producer never loads onnxruntime), and only then become a version.
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { AppError, badRequest } from '../../core/errors.ts';
import type { Signature } from '../../core/jobs/inspect.ts';
import { checkName, modelArtifactKey, modelConfigSchema } from '../../core/registry.ts';
import { addAndAwait } from '../await-job.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { jsonBody } from '../body.ts';

export const aliasBodySchema = z.object({ version: z.number().int().min(1) }).strict();

function versionParam(v: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(v)) throw badRequest(`version "${v.slice(0, 40)}" must be a positive integer`);
  return Number(v);
}

export function modelsRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);

  r.post('/v1/models/:name/versions', async (req, res) => {
    const name = checkName(req.params.name);
    if (req.is('multipart/form-data')) throw new AppError('unsupported_media_type', 'send the ONNX file as the raw body (application/octet-stream), not multipart');
    const uploadKey = `uploads/${randomUUID()}.onnx`;
    try {
      const put = await d.store.put(uploadKey, req, { maxBytes: d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024 });
      if (put.bytes === 0) throw badRequest('body is empty: send the ONNX file as the request body');
      const known = await d.registry.findVersionBySha(name, put.sha256);
      if (known) return void res.status(200).json(known);
      let sig: Signature;
      try {
        sig = await addAndAwait<Signature>(d.queues.queue('model'), d.queues.queueEvents('model'), 'inspect',
          { key: uploadKey, sha256: put.sha256 }, d.cfg.MODELQ_REGISTER_TIMEOUT_MS, 'model check');
      } catch (e) {
        if (e instanceof AppError && e.code === 'invalid_model') throw new AppError('invalid_model', `the file does not load in onnxruntime: ${e.message}`);
        throw e;
      }
      await d.store.move(uploadKey, modelArtifactKey(put.sha256));
      const { record, created } = await d.registry.createVersion(name, {
        sha256: put.sha256, bytes: put.bytes, inputs: sig.inputs, outputs: sig.outputs, lineage: { source: 'upload' },
      });
      d.logger.info({ model: name, version: record.version, sha256: put.sha256, created }, 'model version registered');
      res.status(created ? 201 : 200).json(record);
    } finally {
      await d.store.delete(uploadKey).catch(() => {});
    }
  });

  r.get('/v1/models', async (_req, res) => {
    res.json({ models: await d.registry.listModels() });
  });

  r.get('/v1/models/:name', async (req, res) => {
    res.json(await d.registry.getModel(req.params.name));
  });

  r.get('/v1/models/:name/versions/:version', async (req, res) => {
    res.json(await d.registry.getVersion(req.params.name, versionParam(req.params.version)));
  });

  r.get('/v1/models/:name/versions/:version/onnx', async (req, res) => {
    const v = await d.registry.getVersion(req.params.name, versionParam(req.params.version));
    const stream = await d.store.read(modelArtifactKey(v.sha256));
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(v.bytes));
    res.setHeader('Content-Disposition', `attachment; filename="${v.name}-v${v.version}.onnx"`);
    res.setHeader('ETag', `"${v.sha256}"`);
    stream.pipe(res);
  });

  r.put('/v1/models/:name/aliases/:alias', json, async (req, res) => {
    const { name, alias } = req.params as Record<string, string>;
    const { version } = parseBody(aliasBodySchema, req.body);
    await d.registry.setAlias(checkName(name!), alias!, version);
    res.json({ name, alias, version });
  });

  r.delete('/v1/models/:name/aliases/:alias', async (req, res) => {
    await d.registry.deleteAlias(checkName(req.params.name), req.params.alias);
    res.status(204).end();
  });

  r.get('/v1/models/:name/config', async (req, res) => {
    await d.registry.getModel(req.params.name);
    res.json(await d.registry.getConfig(req.params.name));
  });

  r.put('/v1/models/:name/config', json, async (req, res) => {
    const cfg = parseBody(modelConfigSchema, req.body);
    await d.registry.setConfig((req.params as Record<string, string>).name!, cfg);
    res.json(cfg);
  });

  return r;
}

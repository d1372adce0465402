// /v1/models: the model registry over HTTP. Uploads are streamed to the store, checked by a worker's
// engine (the producer never loads onnxruntime), and only then become a version.
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import type { Signature } from '../../core/jobs/inspect.ts';
import { checkName, modelArtifactKey, modelConfigSchema } from '../../core/registry.ts';
import { aliasRouteSchema, primaryOf } from '../../core/routing.ts';
import { RolloutStore } from '../../core/rollouts.ts';
import { canReadModel, isPlatform } from '../../core/auth.ts';
import { addAndAwait } from '../inference/await-job.ts';
import { principalOf } from '../auth.ts';
import { assertReadable, assertWritable } from '../model-access.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody, sendStream } from '../http.ts';
import { jsonBody } from '../body.ts';
import { backgroundBodySchema, backgroundKey, columnBackground, explainTarget } from '../../core/jobs/explain.ts';
import { createHash } from 'node:crypto';
import type { Config } from '../../core/config.ts';
import { parseTrustedKeys, trustedSigner } from '../../core/signing.ts';
import { checkProcessing } from '../../core/processing/spec.ts';
import { PROCESSING_HEADER, uploadProcessing } from './processing.ts';

const trusted = new Map<string, ReturnType<typeof parseTrustedKeys>>();
/** MODELQ_TRUSTED_KEYS, parsed once per value. */
const trustedKeys = (cfg: Pick<Config, 'MODELQ_TRUSTED_KEYS'>) => {
  let t = trusted.get(cfg.MODELQ_TRUSTED_KEYS);
  if (!t) trusted.set(cfg.MODELQ_TRUSTED_KEYS, (t = parseTrustedKeys(cfg.MODELQ_TRUSTED_KEYS)));
  return t;
};

/** MODELQ_REQUIRE_SIGNED_UPLOADS names the tenant, or is `*`. */
export function signatureRequired(cfg: Pick<Config, 'MODELQ_REQUIRE_SIGNED_UPLOADS'>, tenant: string): boolean {
  const list = cfg.MODELQ_REQUIRE_SIGNED_UPLOADS.split(',').map((s) => s.trim());
  return list.includes('*') || list.includes(tenant);
}

/** One version, or weighted versions with an optional shadow (core/routing.ts). */
export const aliasBodySchema = z.union([z.object({ version: z.number().int().min(1) }).strict(), aliasRouteSchema]);
export const sharingBodySchema = z.object({ shared: z.boolean() }).strict();

function versionParam(v: string): number {
  if (!/^[1-9][0-9]{0,8}$/.test(v)) throw badRequest(`version "${v.slice(0, 40)}" must be a positive integer`);
  return Number(v);
}

export function modelsRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  const rollouts = new RolloutStore(d.redis, d.prefix);
  // A rollout owns its alias until it ends: moving it by hand would be undone at its next evaluation.
  const refuseDuringRollout = async (name: string, alias: string) => {
    const id = await rollouts.activeId(name, alias);
    if (id) throw new AppError('conflict', `alias "${alias}" is moved by rollout ${id}; abort it or let it finish first`);
  };

  r.post('/v1/models/:name/versions', async (req, res) => {
    const name = checkName(req.params.name);
    if (req.is('multipart/form-data'))
      throw new AppError('unsupported_media_type', 'send the ONNX file as the raw body (application/octet-stream), not multipart');
    const p = principalOf(req);
    // Refused before a byte is stored; createVersion checks the owner again, atomically.
    await assertWritable(d.registry, name, p, 'publish');
    const signed = req.headers['x-modelq-signature'];
    const offered = typeof signed === 'string' && signed ? signed.slice(0, 200) : null;
    if (!offered && signatureRequired(d.cfg, p.tenant))
      throw new AppError(
        'forbidden',
        `tenant "${p.tenant}" accepts only signed uploads: send x-modelq-signature, a trusted publisher's signature of the sha256`,
      );
    const processing = uploadProcessing(req.headers[PROCESSING_HEADER]);
    const uploadKey = `uploads/${randomUUID()}.onnx`;
    try {
      const put = await d.store.put(uploadKey, req, { maxBytes: d.cfg.MODELQ_MAX_UPLOAD_MB * 1024 * 1024 });
      if (put.bytes === 0) throw badRequest('body is empty: send the ONNX file as the request body');
      const publisher = offered ? trustedSigner(put.sha256, offered, trustedKeys(d.cfg)) : null;
      if (offered && !publisher)
        throw new AppError('forbidden', `x-modelq-signature does not verify for sha256 ${put.sha256} with any key in MODELQ_TRUSTED_KEYS`);
      const known = await d.registry.findVersionBySha(name, put.sha256);
      if (known) return void res.status(200).json(known);
      let sig: Signature;
      try {
        sig = await addAndAwait<Signature>(
          d.queues.queue('model'),
          d.queues.queueEvents('model'),
          'inspect',
          { key: uploadKey, sha256: put.sha256 },
          d.cfg.MODELQ_REGISTER_TIMEOUT_MS,
          'model check',
        );
      } catch (e) {
        if (e instanceof AppError && e.code === 'invalid_model') throw new AppError('invalid_model', `the file does not load in onnxruntime: ${e.message}`);
        throw e;
      }
      if (processing) checkProcessing(processing, sig);
      await d.store.move(uploadKey, modelArtifactKey(put.sha256));
      const made = await d.registry.createVersion(
        name,
        {
          sha256: put.sha256,
          bytes: put.bytes,
          inputs: sig.inputs,
          outputs: sig.outputs,
          lineage: { source: 'upload', tenant: p.tenant, keyId: p.keyId },
          ...(publisher ? { publisher } : {}),
        },
        { tenant: p.tenant, platform: isPlatform(p) },
      );
      const { created } = made;
      const record = processing && created ? await d.registry.setProcessing(name, made.record.version, processing) : made.record;
      d.logger.info({ model: name, version: record.version, sha256: put.sha256, created }, 'model version registered');
      res.status(created ? 201 : 200).json(record);
    } finally {
      await d.store.delete(uploadKey).catch(() => {});
    }
  });

  r.get('/v1/models', async (req, res) => {
    const p = principalOf(req);
    res.json({ models: await d.registry.listModels((a) => canReadModel(p, a)) });
  });

  r.get('/v1/models/:name', async (req, res) => {
    await assertReadable(d.registry, req.params.name, principalOf(req));
    res.json(await d.registry.getModel(req.params.name));
  });

  r.get('/v1/models/:name/versions/:version', async (req, res) => {
    await assertReadable(d.registry, req.params.name, principalOf(req));
    res.json(await d.registry.getVersion(req.params.name, versionParam(req.params.version)));
  });

  r.get('/v1/models/:name/versions/:version/onnx', async (req, res) => {
    await assertReadable(d.registry, req.params.name, principalOf(req));
    const v = await d.registry.getVersion(req.params.name, versionParam(req.params.version));
    if (v.pipeline) throw new AppError('conflict', `${v.name}@${v.version} is a pipeline of other versions: it has no ONNX file of its own`);
    const stream = await d.store.read(modelArtifactKey(v.sha256));
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(v.bytes));
    res.setHeader('Content-Disposition', `attachment; filename="${v.name}-v${v.version}.onnx"`);
    res.setHeader('ETag', `"${v.sha256}"`);
    if (v.signature) {
      res.setHeader('x-modelq-signature', v.signature.value);
      res.setHeader('x-modelq-public-key', v.signature.publicKey);
      res.setHeader('x-modelq-key-id', v.signature.keyId);
    }
    await sendStream(res, stream, d.logger, { model: v.name, version: v.version });
  });

  r.put('/v1/models/:name/aliases/:alias', json, async (req, res) => {
    const { name, alias } = req.params as Record<string, string>;
    const body = parseBody(aliasBodySchema, req.body);
    await assertWritable(d.registry, checkName(name!), principalOf(req), 'admin');
    await refuseDuringRollout(name!, alias!);
    if ('version' in body) {
      await d.registry.setAlias(checkName(name!), alias!, body.version);
      return void res.json({ name, alias, version: body.version });
    }
    await d.registry.setAliasRoute(checkName(name!), alias!, body);
    res.json({ name, alias, version: primaryOf(body), ...body });
  });

  r.delete('/v1/models/:name/aliases/:alias', async (req, res) => {
    await assertWritable(d.registry, checkName(req.params.name), principalOf(req), 'admin');
    await refuseDuringRollout(req.params.name, req.params.alias);
    await d.registry.deleteAlias(checkName(req.params.name), req.params.alias);
    res.status(204).end();
  });

  r.get('/v1/models/:name/config', async (req, res) => {
    await assertReadable(d.registry, req.params.name, principalOf(req));
    await d.registry.getModel(req.params.name);
    res.json(await d.registry.getConfig(req.params.name));
  });

  r.put('/v1/models/:name/config', json, async (req, res) => {
    const cfg = parseBody(modelConfigSchema, req.body);
    const name = checkName((req.params as Record<string, string>).name!);
    await assertWritable(d.registry, name, principalOf(req), 'admin');
    await d.registry.setConfig(name, cfg);
    res.json(cfg);
  });

  // Private by default: other tenants read and infer a model only once its owner shares it.
  r.put('/v1/models/:name/sharing', json, async (req, res) => {
    const { shared } = parseBody(sharingBodySchema, req.body);
    const name = checkName((req.params as Record<string, string>).name!);
    const a = await assertWritable(d.registry, name, principalOf(req), 'admin');
    if (!a) throw notFound(`model "${name}" not found`);
    await d.registry.setShared(name, shared);
    res.json({ name, owner: a.owner, shared });
  });

  // Background rows for explanation; trained versions get theirs from the training split.
  r.put('/v1/models/:name/versions/:version/background', json, async (req, res) => {
    const { rows } = parseBody(backgroundBodySchema, req.body);
    const name = checkName((req.params as Record<string, string>).name!);
    await assertWritable(d.registry, name, principalOf(req), 'admin');
    const v = await d.registry.getVersion(name, versionParam((req.params as Record<string, string>).version!));
    const t = explainTarget(v);
    let body: string;
    let width: number;
    if (t.columns) {
      width = t.columns.length;
      body = JSON.stringify(columnBackground(rows, t.columns));
    } else {
      width = t.features > 0 ? t.features : Array.isArray(rows[0]) ? rows[0].length : 0;
      const bad = rows.findIndex((row) => !Array.isArray(row) || row.length !== width || row.some((x) => typeof x !== 'number'));
      if (bad >= 0) {
        const row = rows[bad]!;
        if (Array.isArray(row) && row.length !== width) throw badRequest(`rows[${bad}] has ${row.length} values; the model takes ${width} features`);
        throw badRequest(`rows[${bad}] must be an array of ${width} numbers`);
      }
      body = JSON.stringify({ features: width, x: rows.flat() });
    }
    const key = backgroundKey(createHash('sha256').update(body).digest('hex'));
    await d.store.put(key, body);
    const record = await d.registry.setExplainArtifact(name, v.version, 'background', { key, rows: rows.length, features: width });
    res.json(record);
  });

  return r;
}

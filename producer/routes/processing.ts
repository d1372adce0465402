// /v1/models/{name}/versions/{v}/processing: a version's declared pre- and post-processing (files in,
// labels out; core/processing/spec.ts), checked against its inputs and outputs before it is stored.
// An upload may declare it too, in the Modelq-Processing header (JSON).
import { Router } from 'express';
import { badRequest } from '../../core/errors.ts';
import { checkProcessing, processingSchema, type Processing } from '../../core/processing/spec.ts';
import { checkName } from '../../core/registry.ts';
import { principalOf } from '../auth.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { assertReadable, assertWritable } from '../model-access.ts';

export const PROCESSING_HEADER = 'modelq-processing';

/** The processing an upload declares in its header, parsed (400 before a byte is stored); null without one. */
export function uploadProcessing(header: string | string[] | undefined): Processing | null {
  if (header === undefined) return null;
  let json: unknown;
  try {
    json = JSON.parse(Array.isArray(header) ? header.join(',') : header);
  } catch {
    throw badRequest(`the ${PROCESSING_HEADER} header must be JSON`);
  }
  return parseBody(processingSchema, json, 'processing');
}

function versionParam(v: string | undefined): number {
  if (!v || !/^[1-9][0-9]{0,8}$/.test(v)) throw badRequest(`version "${String(v).slice(0, 40)}" must be a positive integer`);
  return Number(v);
}

export function processingRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  const path = '/v1/models/:name/versions/:version/processing';

  r.get(path, async (req, res) => {
    const { name, version } = req.params as Record<string, string>;
    await assertReadable(d.registry, checkName(name!), principalOf(req));
    const v = await d.registry.getVersion(name!, versionParam(version));
    res.json(v.processing ?? null);
  });

  r.put(path, json, async (req, res) => {
    const { name, version } = req.params as Record<string, string>;
    await assertWritable(d.registry, checkName(name!), principalOf(req), 'admin');
    const v = await d.registry.getVersion(name!, versionParam(version));
    if (v.pipeline) throw badRequest(`${v.name}@${v.version} is a pipeline: declare processing on its steps' models`);
    const p = checkProcessing(parseBody(processingSchema, req.body, 'processing'), v);
    res.json(await d.registry.setProcessing(v.name, v.version, p));
  });

  r.delete(path, async (req, res) => {
    const { name, version } = req.params as Record<string, string>;
    await assertWritable(d.registry, checkName(name!), principalOf(req), 'admin');
    const v = await d.registry.getVersion(name!, versionParam(version));
    await d.registry.setProcessing(v.name, v.version, null);
    res.status(204).end();
  });
  return r;
}

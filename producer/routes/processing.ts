// /v1/models/{name}/versions/{v}/processing: a version's declared pre- and post-processing (files in,
// labels out; core/processing/spec.ts), checked against its inputs and outputs before it is stored.
// An upload may declare it too, in the Modelq-Processing header (JSON).
import { createHash } from 'node:crypto';
import { Router, type Request } from 'express';
import { AppError, badRequest, notFound } from '../../core/errors.ts';
import { checkProcessing, FILE_NAME, processingFileKey, processingSchema, type Processing } from '../../core/processing/spec.ts';
import { parseTokenizer } from '../../core/processing/tokenizer.ts';
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

/** A raw request body, refused (413) past `limit` bytes without reading further. */
async function readLimited(req: Request, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) throw new AppError('payload_too_large', `the file is over MODELQ_MAX_PROCESSING_FILE_MB (${limit} bytes)`);
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      req.resume();
      throw new AppError('payload_too_large', `the file is over MODELQ_MAX_PROCESSING_FILE_MB (${limit} bytes)`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
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

  // Files the processing reads (a tokenizer.json): stored by content, recorded in the version by name.
  const filePath = `${path}/files/:file`;
  const fileParam = (f: string | undefined) => {
    if (!f || !FILE_NAME.test(f)) throw badRequest(`file name "${String(f).slice(0, 60)}" must be letters, digits, dots, dashes and underscores (at most 128)`);
    return f;
  };

  r.put(filePath, async (req, res) => {
    const { name, version, file } = req.params as Record<string, string>;
    const f = fileParam(file);
    await assertWritable(d.registry, checkName(name!), principalOf(req), 'admin');
    const v = await d.registry.getVersion(name!, versionParam(version));
    const bytes = await readLimited(req, d.cfg.MODELQ_MAX_PROCESSING_FILE_MB * 1024 * 1024);
    if (!bytes.length) throw badRequest('the file is empty');
    // Only tokenizers are read today: the file must build one, so a bad one is refused here, not in every request.
    try {
      parseTokenizer(bytes);
    } catch (e) {
      throw badRequest(`file "${f}": ${(e as Error).message}`);
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await d.store.put(processingFileKey(sha256), bytes);
    res.json(await d.registry.setProcessingFile(v.name, v.version, f, { sha256, bytes: bytes.length }));
  });

  r.get(filePath, async (req, res) => {
    const { name, version, file } = req.params as Record<string, string>;
    const f = fileParam(file);
    await assertReadable(d.registry, checkName(name!), principalOf(req));
    const v = await d.registry.getVersion(name!, versionParam(version));
    const ref = v.files?.[f];
    if (!ref) throw notFound(`version ${v.version} of ${v.name} has no file "${f}"`);
    res.type('application/json').send(await d.store.get(processingFileKey(ref.sha256)));
  });

  r.delete(filePath, async (req, res) => {
    const { name, version, file } = req.params as Record<string, string>;
    const f = fileParam(file);
    await assertWritable(d.registry, checkName(name!), principalOf(req), 'admin');
    const v = await d.registry.getVersion(name!, versionParam(version));
    if (!v.files?.[f]) throw notFound(`version ${v.version} of ${v.name} has no file "${f}"`);
    const used = v.processing?.inputs.find((s) => s.type === 'text' && s.tokenizer === f);
    if (used) throw new AppError('conflict', `the processing's text step "${used.input}" reads "${f}": change the processing first`);
    await d.registry.setProcessingFile(v.name, v.version, f, null);
    res.status(204).end();
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

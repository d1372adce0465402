// Files for a model with declared processing, on the KServe door: `{"instances": [{"<input>": {"b64":
// "..."}}]}` (or bare `{"b64"}` instances for a single file input), and multipart bodies whose file
// fields are named by input (or any name, for a single file input), one file per row. Both become the
// inference-protocol request of BYTES inputs that core/processing/request.ts checks.
import busboy from 'busboy';
import type { Request, RequestHandler } from 'express';
import type { Config } from '../../core/config.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import type { VersionRecord } from '../../core/registry.ts';
import { fileInputs } from '../../core/processing/pipeline.ts';
import type { KServeRequest } from './kserve.ts';
import type { V2InferRequest } from './infer-request.ts';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** KServe instances of a processed model as its inference-protocol request. */
export function fileInstancesToInfer(body: KServeRequest, model: VersionRecord, parameters: Record<string, unknown> = {}): V2InferRequest {
  const steps = fileInputs(model)!.map((input) => ({ input }));
  const xs = body.instances;
  const single = steps.length === 1 ? steps[0]!.input : undefined;
  const inputs = steps.map((s) => ({
    name: s.input,
    datatype: 'BYTES',
    shape: [xs.length],
    data: xs.map((x, i) => {
      if (isObject(x) && s.input in x) return x[s.input];
      if (single && isObject(x) && typeof x.b64 === 'string') return x;
      if (single && typeof x === 'string') return x;
      throw badRequest(`instances[${i}] has no file for input "${s.input}": send {"${s.input}": {"b64": "..."}}`);
    }),
  }));
  const params = { ...body.parameters, ...parameters };
  return { inputs, ...(Object.keys(params).length ? { parameters: params } : {}) };
}

/** At most this many files in one multipart request. */
export const MAX_FILES = 256;

/**
 * Reads a multipart body's files into `req.body` as KServe instances (see asInstances), within
 * the JSON request limit in total; other fields are ignored. Leaves other bodies to `other`.
 */
export function multipartFiles(cfg: Pick<Config, 'MODELQ_MAX_REQUEST_MB'>, other: RequestHandler): RequestHandler {
  const limit = cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024;
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) return other(req, res, next);
    readFiles(req, limit).then((files) => {
      if (!files.length) return next(badRequest('the multipart body has no file'));
      req.body = { instances: asInstances(files) };
      next();
    }, next);
  };
}

/** One field: a file per row (bare `{"b64"}`); several: row i takes the i-th file of each field. */
function asInstances(files: { field: string; data: Buffer }[]): unknown[] {
  const fields = [...new Set(files.map((f) => f.field))];
  if (fields.length === 1) return files.map((f) => ({ b64: f.data.toString('base64') }));
  const byField = fields.map((k) => files.filter((f) => f.field === k));
  const rows = Math.max(...byField.map((fs) => fs.length));
  return Array.from({ length: rows }, (_, i) =>
    Object.fromEntries(fields.map((k, j) => [k, byField[j]![i] ? { b64: byField[j]![i]!.data.toString('base64') } : null])),
  );
}

function readFiles(req: Request, limit: number): Promise<{ field: string; name: string; data: Buffer }[]> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: MAX_FILES, fileSize: limit, fields: 64 } });
    } catch (e) {
      return reject(badRequest(`multipart body: ${(e as Error).message}`));
    }
    const files: { field: string; name: string; data: Buffer }[] = [];
    let total = 0;
    let failed: Error | undefined;
    const fail = (e: Error) => {
      failed ??= e;
      req.unpipe(bb);
      req.resume();
      reject(failed);
    };
    bb.on('file', (field, stream, info) => {
      const parts: Buffer[] = [];
      stream.on('data', (b: Buffer) => {
        total += b.length;
        if (total > limit) return fail(new AppError('payload_too_large', `the files are over MODELQ_MAX_REQUEST_MB (${limit} bytes)`));
        parts.push(b);
      });
      stream.on('end', () => files.push({ field, name: info.filename ?? '', data: Buffer.concat(parts) }));
      // A form cut off mid-file errors the file's stream as well as busboy: answered once, as a 400.
      stream.on('error', (e: Error) => fail(badRequest(`multipart body: ${e.message}`)));
    });
    bb.on('filesLimit', () => fail(badRequest(`more than ${MAX_FILES} files in one request`)));
    bb.on('error', (e: Error) => fail(badRequest(`multipart body: ${e.message}`)));
    bb.on('close', () => {
      if (!failed) resolve(files);
    });
    req.pipe(bb);
  });
}

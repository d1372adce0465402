// Batches by reference: `POST /v1/batches` with a JSON body naming objects in storage instead of
// uploading them. The tenant's roots (MODELQ_BATCH_ROOTS) are checked before anything is read;
// then the input is listed and planned (reference-plan.ts) and one flow enqueued, as for uploads.
// Workers read their ranges straight from the store and write parts under the output prefix; the
// finalizer writes `_manifest.json` last.
import { batchVersions } from './versions.ts';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { BatchStore, type BatchView } from '../../core/batches.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import { OUTPUT_FORMATS, batchModel, outputPrefixKeys, type BatchSpec } from '../../core/jobs/batch.ts';
import { batchChunkJobOptions, defaultJobOptions } from '../../core/queues.ts';
import { BadUriError, type ObjectRef, parseObjectUri, underRoots, uriOf } from '../../core/storage/object-uris.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { assertReadable } from '../model-access.ts';
import { publicView } from './accept.ts';
import { planFiles } from './files-plan.ts';
import { checkFileGroups, fileColumnInputs } from './parquet-files.ts';
import { fileInputs } from '../../core/processing/pipeline.ts';
import { listInputs, planReference } from './reference-plan.ts';

const uri = z.string().min(1).max(2048);

export const byReferenceSchema = z
  .object({
    model: z.string().min(1).max(200).meta({ description: 'Model reference: name, name@alias or name@3' }),
    input: z
      .object({
        uri: z.union([uri, z.array(uri).min(1).max(1000)]).meta({
          description:
            's3://bucket/key, s3://bucket/prefix/, a glob (s3://bucket/data/*.parquet, ** crosses folders), store:key (the artifact store), or a list of them',
        }),
        format: z.enum(['jsonl', 'csv', 'parquet', 'files']).optional().meta({
          description:
            "Default: from the objects' names, else the first object's first bytes. `files` (the default for a model with declared processing unless every object is .jsonl): each object is one file, one row, its id its path under the prefix",
        }),
      })
      .strict(),
    output: z
      .object({
        uri: uri.meta({ description: 'The prefix the parts (part-00000.<format>), _errors/ and _manifest.json are written under' }),
        format: z.enum(OUTPUT_FORMATS).default('jsonl'),
      })
      .strict(),
    chunkBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 ** 3)
      .optional()
      .meta({ description: 'JSONL/CSV bytes per chunk job (default MODELQ_BATCH_CHUNK_BYTES)' }),
    metadata: z.record(z.string().max(200), z.string().max(4096)).optional(),
    device: z.enum(['cpu', 'gpu']).optional(),
  })
  .strict();
export type ByReference = z.infer<typeof byReferenceSchema>;

const isParquetName = (f: { uri: string }) => /\.parquet$/i.test(f.uri);

/** Parses a URI, or a 400 naming the field. */
function parse(field: string, value: string, glob: boolean): ObjectRef {
  try {
    return parseObjectUri(value, { glob });
  } catch (e) {
    if (e instanceof BadUriError) throw badRequest(`${field}: ${e.message}`);
    throw e;
  }
}

/** Every URI under one of the tenant's roots, or a 403 before anything is read. */
function checkRoots(d: ProducerDeps, tenant: string, named: { field: string; ref: ObjectRef }[]): void {
  const roots = d.cfg.MODELQ_BATCH_ROOTS[tenant] ?? [];
  if (!roots.length) throw new AppError('forbidden', `tenant "${tenant}" has no storage roots (MODELQ_BATCH_ROOTS): batches by reference are not allowed`);
  for (const { field, ref } of named) {
    if (!underRoots(ref, roots)) throw new AppError('forbidden', `${field}: ${uriOf(ref)} is not under the storage roots allowed to tenant "${tenant}"`);
  }
}

export async function acceptByReference(d: ProducerDeps, body: unknown, tenant: string): Promise<BatchView> {
  const p = parseBody(byReferenceSchema, body);
  const uris = Array.isArray(p.input.uri) ? p.input.uri : [p.input.uri];
  const inputs = uris.map((u, i) => ({ field: Array.isArray(p.input.uri) ? `input.uri[${i}]` : 'input.uri', ref: parse('input.uri', u, true) }));
  const outUri = p.output.uri.endsWith('/') ? p.output.uri : `${p.output.uri}/`;
  const output = { field: 'output.uri', ref: parse('output.uri', outUri, false) };
  checkRoots(d, tenant, [...inputs, output]);
  await assertReadable(d.registry, p.model, tenant); // another tenant's private model is "not found"
  // Over a weighted alias, each chunk is scored by one of the split's versions (versions.ts).
  const { model, route } = await batchVersions(d.registry, p.model, undefined, { explain: false, byReference: true });

  const files = await listInputs(
    d.objects,
    inputs.map((x) => x.ref),
    d.cfg.MODELQ_BATCH_MAX_CHUNKS,
  );
  if (p.input.format === 'files' && !model.processing)
    throw badRequest(`input.format "files" is for models with declared processing; model ${model.name}@${model.version} takes tensors`);
  const eachFile =
    !!model.processing &&
    (p.input.format === 'files' || (p.input.format === undefined && !files.every((f) => /\.(jsonl|ndjson)$/i.test(f.uri)) && !files.every(isParquetName)));
  // Parquet objects of files: a binary column per file input, a row group a chunk (parquet-files.ts).
  const parquetFiles = !!model.processing && !eachFile && (p.input.format === 'parquet' || (p.input.format === undefined && files.every(isParquetName)));
  if (eachFile && model.processing!.inputs.length !== 1)
    throw badRequest(
      `model ${model.name} takes files for ${model.processing!.inputs.length} inputs: name JSONL rows of {"id", ...} instead of a prefix of files`,
    );
  const plan = eachFile
    ? planFiles(files, p.chunkBytes ?? d.cfg.MODELQ_BATCH_CHUNK_BYTES, d.cfg.MODELQ_BATCH_MAX_CHUNKS)
    : await planReference(
        d,
        files,
        p.input.format === 'files' ? undefined : parquetFiles ? 'parquet' : p.input.format,
        parquetFiles ? fileColumnInputs(model, fileInputs(model)!, undefined) : model.inputs,
        p.chunkBytes ?? d.cfg.MODELQ_BATCH_CHUNK_BYTES,
      );
  if (parquetFiles) checkFileGroups(plan.chunks, d.cfg.MODELQ_BATCH_CHUNK_BYTES);
  // A prefix holding a finished batch's manifest would look complete while it is rewritten.
  const outStore = d.objects.of(output.ref);
  const manifestKey = outputPrefixKeys.manifest(output.ref.key);
  if (await outStore.stat(manifestKey).catch((e: Error) => Promise.reject(badRequest(`cannot read ${outUri}: ${e.message}`))))
    throw new AppError('conflict', `output.uri: ${outUri} already holds _manifest.json (a finished batch's output); name another prefix, or remove it`);

  const id = `batch_${randomBytes(10).toString('hex')}`;
  const now = Date.now();
  const spec: BatchSpec = {
    id,
    tenant,
    model: batchModel(model),
    format: plan.format,
    inputKey: '',
    bytes: plan.bytes,
    totalRows: plan.rows,
    chunks: plan.chunks.length,
    chunkRows: 0,
    source: { uris, files: plan.files, ...(eachFile ? { each: 'file' as const } : {}) },
    output: { uri: outUri, format: p.output.format },
    ...(p.metadata ? { metadata: p.metadata } : {}),
    ...(route ? { route } : {}),
    createdAt: new Date(now).toISOString(),
    expiresAt: new Date(now + d.cfg.MODELQ_BATCH_TTL).toISOString(),
  };
  const batches = new BatchStore(d.redis, d.prefix);
  let accepted: BatchView;
  try {
    await batches.create(spec);
    accepted = publicView((await batches.view(id))!);
    const queueName = p.device === 'gpu' ? 'score-gpu' : 'score';
    await d.queues.flowProducer().add({
      name: 'finalize',
      queueName: 'batch',
      data: { batchId: id },
      opts: { ...defaultJobOptions.batch, jobId: id },
      children: plan.chunks.map((c, index) => ({
        name: 'score',
        queueName,
        data: { batchId: id, index, start: c.start, end: c.end, firstRow: c.firstRow, rows: c.rows, file: c.file },
        opts: batchChunkJobOptions(queueName, `${id}-${index}`),
      })),
    });
  } catch (e) {
    await batches.remove(id).catch(() => {});
    throw e;
  }
  d.logger.info({ batch: id, model: `${model.name}@${model.version}`, files: plan.files.length, chunks: plan.chunks.length }, 'batch by reference accepted');
  return accepted;
}

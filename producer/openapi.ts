// The OpenAPI 3 document at /openapi.json, generated from the same zod schemas that validate requests.
import { z } from 'zod';
import { modelConfigSchema, versionRecordSchema } from '../core/registry.ts';
import { v2InferRequestSchema } from './inference/infer-request.ts';
import { kserveRequestSchema } from './inference/kserve.ts';
import { aliasBodySchema, sharingBodySchema } from './routes/models.ts';
import { aliasRouteSchema } from '../core/routing.ts';
import { rolloutBodySchema } from '../core/rollouts.ts';
import { batchParamsSchema, listQuerySchema } from './routes/batches.ts';
import { byReferenceSchema } from './batches/by-reference.ts';
import { datasetListQuerySchema, datasetParamsSchema } from './datasets/routes.ts';
import { trainRequestSchema } from '../core/jobs/train.ts';
import { compressRequestSchema } from '../core/jobs/compress.ts';
import { SERVER_VERSION } from './inference/metadata.ts';
import { tensorSchema } from '../core/tensors.ts';
import { backgroundBodySchema } from '../core/jobs/explain.ts';
import { processingSchema } from '../core/processing/spec.ts';
import { pipelineSpecSchema } from '../core/processing/pipeline.ts';
import { referenceBodySchema } from './routes/drift.ts';
import { loggingConfigSchema } from '../core/payload-logs.ts';
import { logsDatasetQuerySchema, logsQuerySchema } from './routes/logs.ts';
import { datasetEraseQuerySchema, logEraseQuerySchema } from './routes/erasure.ts';
import { retentionRuleSchema } from '../core/retention.ts';
import { createBatchSchema as openaiBatchSchema, listBatchesSchema as openaiListBatchesSchema } from './openai/batches.ts';
import { listFilesSchema as openaiListFilesSchema } from './openai/files.ts';

interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  summary: string;
  /** Query parameters, from the zod object that validates them. */
  query?: z.ZodObject;
  json?: z.ZodType;
  binary?: string;
  response?: z.ZodType;
  status?: number;
}

const modelSchema = z.object({
  name: z.string(),
  versions: z.array(versionRecordSchema),
  aliases: z.record(z.string(), z.number()).meta({ description: "Each alias's version; a weighted alias's primary (most weight)" }),
  routes: z.record(z.string(), aliasRouteSchema).optional().meta({ description: 'Weighted or shadowed aliases: versions with weights, shadow' }),
  owner: z.string().meta({ description: 'Tenant that created the model; only its keys (or a platform operator) change it' }),
  shared: z.boolean().meta({ description: 'Whether other tenants may read and infer it (default false)' }),
});
const kservePredictResponse = z.object({ predictions: z.array(z.record(z.string(), z.unknown())) });
const kserveExplainResponse = z.object({
  predictions: z.array(z.record(z.string(), z.unknown())),
  explanations: z.array(
    z.object({ attributions: z.unknown(), base: z.number().optional(), class: z.number().optional(), tokens: z.array(z.string()).optional() }),
  ),
  parameters: z.record(z.string(), z.unknown()).meta({ description: 'explain_method, explain_output, explain_samples' }),
});
const v2Response = z.object({ model_name: z.string(), model_version: z.string(), id: z.string().optional(), outputs: z.array(tensorSchema) });

/** Every HTTP route of the producer: adding a route means adding it here (test/integration/openapi.test.ts walks the router and fails otherwise). */
export const ROUTES: RouteDoc[] = [
  {
    method: 'post',
    path: '/v1/models/{name}/versions',
    summary: 'Register a model version (raw ONNX body); 201 new, 200 when the bytes are already a version',
    binary: 'application/octet-stream',
    response: versionRecordSchema,
    status: 201,
  },
  { method: 'get', path: '/v1/models', summary: 'List models', response: z.object({ models: z.array(modelSchema) }) },
  { method: 'get', path: '/v1/models/{name}', summary: 'A model with its versions and aliases', response: modelSchema },
  { method: 'get', path: '/v1/models/{name}/versions/{version}', summary: 'One version', response: versionRecordSchema },
  { method: 'get', path: '/v1/models/{name}/versions/{version}/onnx', summary: 'Download the ONNX file' },
  {
    method: 'put',
    path: '/v1/models/{name}/aliases/{alias}',
    summary: 'Point an alias at a version, or split it by weight over up to 4 versions with an optional shadow',
    json: aliasBodySchema,
  },
  { method: 'delete', path: '/v1/models/{name}/aliases/{alias}', summary: 'Remove an alias', status: 204 },
  {
    method: 'post',
    path: '/v1/models/{name}/rollouts',
    summary: 'Start a rollout: move an alias to a candidate version in steps of weight, advanced or rolled back by its gates (docs/rollout.md)',
    json: rolloutBodySchema,
    status: 201,
  },
  { method: 'get', path: '/v1/models/{name}/rollouts', summary: "The model's rollouts, newest first" },
  {
    method: 'get',
    path: '/v1/models/{name}/comparisons/{primary}/{shadow}',
    summary: 'Shadow comparison of two versions: compared, top-1 agreement, within tolerance, shadow errors, dropped mirrors, p50 latencies',
  },
  {
    method: 'get',
    path: '/v1/models/{name}/aliases/{alias}/live',
    summary:
      "An alias's versions side by side: split, requests, errors, p50/p99 latency, agreement with the primary and output drift (top-1 class shares against the primary's), the shadow included",
  },
  { method: 'get', path: '/v1/models/{name}/rollouts/{id}', summary: 'A rollout: its state, last evaluation and audit history' },
  {
    method: 'post',
    path: '/v1/models/{name}/rollouts/{id}/{action}',
    summary: 'pause, resume or abort a rollout (scope publish); abort points the alias back at the baseline',
  },
  { method: 'get', path: '/v1/models/{name}/config', summary: 'Serving settings (dynamic batching)', response: modelConfigSchema },
  {
    method: 'put',
    path: '/v1/models/{name}/config',
    summary: 'Change serving settings; takes effect on the next batch',
    json: modelConfigSchema,
    response: modelConfigSchema,
  },
  {
    method: 'put',
    path: '/v1/models/{name}/sharing',
    summary: 'Share a model with every tenant (read and infer) or make it private again (the default); owner admin only',
    json: sharingBodySchema,
  },
  {
    method: 'put',
    path: '/v1/models/{name}/versions/{version}/background',
    summary:
      'Set the background rows attributions are measured from (`parameters.explain` on /v2 infer); trained versions have one from their training split; admin',
    json: backgroundBodySchema,
    response: versionRecordSchema,
  },
  {
    method: 'put',
    path: '/v1/models/{name}/versions/{version}/processing',
    summary:
      "Declare how files become the version's inputs (image decode, EXIF orientation, resize, crop, channels, normalisation, layout, precision) and how an output becomes labels (softmax, top-k, threshold, argmax), checked against its inputs and outputs (docs/processing.md); the version then takes files online and in batches; admin",
    json: processingSchema,
    response: versionRecordSchema,
  },
  { method: 'get', path: '/v1/models/{name}/versions/{version}/processing', summary: "The version's declared processing (null without one); read" },
  {
    method: 'post',
    path: '/v1/models/{name}/pipelines',
    summary:
      'Register a new version that is a pipeline: steps of registered model versions (by number or alias), how inputs and step outputs feed them, forEach steps run on the crop of each detected box, and the outputs; checked against the steps (names, datatypes and shapes, cycles) and served as any version (docs/processing.md#pipelines); publish',
    json: pipelineSpecSchema,
    response: versionRecordSchema,
    status: 201,
  },
  {
    method: 'delete',
    path: '/v1/models/{name}/versions/{version}/processing',
    summary: "Remove the version's declared processing: it takes tensors again; admin",
    status: 204,
  },
  {
    method: 'put',
    path: '/v1/models/{name}/versions/{version}/processing/files/{file}',
    summary:
      "Store a file the version's processing reads (a HuggingFace tokenizer.json for a text step), as the raw body; checked to build a tokenizer; at most MODELQ_MAX_PROCESSING_FILE_MB; admin",
    binary: 'application/json',
    response: versionRecordSchema,
  },
  { method: 'get', path: '/v1/models/{name}/versions/{version}/processing/files/{file}', summary: "A file of the version's processing, as stored; read" },
  {
    method: 'delete',
    path: '/v1/models/{name}/versions/{version}/processing/files/{file}',
    summary: "Remove a file of the version's processing (409 while a step reads it); admin",
    status: 204,
  },
  {
    method: 'put',
    path: '/v1/models/{name}/versions/{version}/reference',
    summary:
      'Set the reference profile drift is measured against, from a dataset or rows (quantile bins per numeric feature, shares per category); trained versions have one from their training split; admin',
    json: referenceBodySchema,
    response: versionRecordSchema,
  },
  {
    method: 'get',
    path: '/v1/models/{name}/versions/{version}/drift',
    summary:
      'Drift of sampled online inputs from the reference: PSI per numeric feature, Jensen-Shannon distance per categorical one, levels ok < MODELQ_DRIFT_WARN <= warn < MODELQ_DRIFT_ALERT <= alert; read',
  },
  {
    method: 'get',
    path: '/v1/models/{name}/versions/{version}/card',
    summary:
      'Model card: task, inputs and outputs, training data, recorded and held-out metrics (per-class precision/recall and confusion matrix for classifiers), calibration (reliability bins, ECE), input importance from stored explained batches, compression, drift, lineage, owner, signature; JSON, or Markdown with Accept: text/markdown or ?format=md; read',
  },
  ...(['/v1/models/{name}/logging', '/v1/models/{name}/aliases/{alias}/logging'] as const).flatMap((path): RouteDoc[] => {
    const of = path.includes('{alias}') ? "the alias's (requests naming it; over the model's)" : "the model's";
    return [
      { method: 'get', path, summary: `Payload logging setting: ${of} sample share and redactions (null: off); read` },
      {
        method: 'put',
        path,
        summary: `Log a sampled share of online requests and answers (every door) as Parquet parts in the store, redacted first: ${of} setting; admin`,
        json: loggingConfigSchema,
      },
      { method: 'delete', path, summary: `Stop payload logging: remove ${of} setting; admin`, status: 204 },
    ];
  }),
  {
    method: 'get',
    path: '/v1/models/{name}/logs',
    summary:
      "Payload log records (JSON lines, oldest first) of the model, or one version, from/to (ISO time or epoch ms), at most limit (default 1000, max 10000): request_id, client_id, time, tenant, key_id, version, alias, latency_ms, inputs, outputs, error; the model's owner only; read",
    query: logsQuerySchema,
  },
  {
    method: 'post',
    path: '/v1/models/{name}/logs/dataset',
    summary:
      "A dataset (JSONL) from the payload log records from/to: a row per request row, a column per input and per output (output_<name>), request_id, time, version; the model's owner only; admin",
    query: logsDatasetQuerySchema,
    status: 201,
  },
  {
    method: 'delete',
    path: '/v1/models/{name}/versions/{version}',
    summary:
      'Erase a version: its record, aliases naming it, figures, drift windows, model file and artifacts (unless another version has the same bytes), the job that made it; workers drop its sessions and cached file. Answers the erasure report; admin',
  },
  {
    method: 'delete',
    path: '/v1/models/{name}/logs',
    summary:
      'Erase payload log records of the model timed in [from, to] (ISO time or epoch ms): parts inside go, a part across an end is written again without them; the erasure report; admin',
    query: logEraseQuerySchema,
  },
  {
    method: 'get',
    path: '/v1/datasets/{id}/dependents',
    summary: 'Model versions that depend on the dataset through lineage: trained, measured or calibrated on it, and derived from those (recursively); read',
  },
  {
    method: 'delete',
    path: '/v1/datasets/{id}',
    summary:
      'Erase a dataset: its file, record and the jobs that read it; with dependents a 409 naming them, unless ?cascade=true erases them first. Answers the erasure report; admin',
    query: datasetEraseQuerySchema,
  },
  {
    method: 'delete',
    path: '/v1/batches/{id}',
    summary: 'Erase a finished batch: input, outputs, errors, records and jobs (a running one is a 409); the erasure report; admin',
  },
  {
    method: 'put',
    path: '/v1/tenants/{id}/retention',
    summary: "Set a tenant's retention rule (days for datasets, batches, logs, job records; cascadeDatasets); a repeatable job erases what expired; platform",
    json: retentionRuleSchema,
  },
  { method: 'get', path: '/v1/tenants/{id}/retention', summary: "A tenant's retention rule; platform" },
  { method: 'delete', path: '/v1/tenants/{id}/retention', summary: "Remove a tenant's retention rule (keep everything); platform", status: 204 },
  {
    method: 'get',
    path: '/v1/audit',
    summary:
      "Audit log (append-only Redis stream): every change and refusal, filtered by from/to (ISO time or epoch ms), actor (tenant), action, at most limit (default 100, max 1000); tenants see their own entries, platform keys every tenant's; read",
  },
  { method: 'get', path: '/v2', summary: 'Server metadata (Open Inference Protocol)' },
  { method: 'get', path: '/v2/health/live', summary: 'Server live' },
  { method: 'get', path: '/v2/health/ready', summary: 'Server ready (Redis answers)' },
  { method: 'get', path: '/v2/models/{name}', summary: 'Model metadata (latest version)' },
  { method: 'get', path: '/v2/models/{name}/versions/{version}', summary: 'Model metadata' },
  { method: 'get', path: '/v2/models/{name}/ready', summary: 'Model ready' },
  { method: 'get', path: '/v2/models/{name}/versions/{version}/ready', summary: 'Model version ready' },
  {
    method: 'post',
    path: '/v2/models/{name}/infer',
    summary:
      'Inference (latest version). `parameters: { explain: true, explainSamples?: P, explainClass?: k, explainSeed?: s }` adds an `attributions` output [N, features] and `parameters.explain_base`',
    json: v2InferRequestSchema,
    response: v2Response,
  },
  { method: 'post', path: '/v2/models/{name}/versions/{version}/infer', summary: 'Inference', json: v2InferRequestSchema, response: v2Response },
  {
    method: 'post',
    path: '/v1/models/{name}:predict',
    summary:
      "KServe V1 prediction (latest version), on the /v2 path (same keys, limits and batching). `instances`: objects keyed by input name for a model whose every input takes one value per row (the columns; absent keys and null are missing values, other keys ignored), or arrays for a single-input model. Each prediction is an object of the model's outputs by name, each the row's value: a classifier's `label` and `probabilities` keyed by class when the version lists its classes (else a list)",
    json: kserveRequestSchema,
    response: kservePredictResponse,
  },
  {
    method: 'post',
    path: '/v1/models/{name}/versions/{version}:predict',
    summary: 'KServe V1 prediction',
    json: kserveRequestSchema,
    response: kservePredictResponse,
  },
  {
    method: 'post',
    path: '/v1/models/{name}:explain',
    summary:
      'KServe V1 explanation (latest version): the :predict body, explained as `parameters.explain` on /v2 does; each explanation has `attributions` keyed by column for a column-input model (else a list), `base`, `class`, and `tokens` for a text model',
    json: kserveRequestSchema,
    response: kserveExplainResponse,
  },
  {
    method: 'post',
    path: '/v1/models/{name}/versions/{version}:explain',
    summary: 'KServe V1 explanation',
    json: kserveRequestSchema,
    response: kserveExplainResponse,
  },
  {
    method: 'post',
    path: '/v1/batches',
    summary:
      'Submit a batch: the JSONL, CSV or Parquet file as the raw body with ?model= (or multipart with a `file` field), or, as a JSON body without ?model=, objects in storage by reference (input.uri, output.uri); 202',
    query: batchParamsSchema,
    json: byReferenceSchema,
    binary: 'application/x-ndjson',
    status: 202,
  },
  { method: 'get', path: '/v1/batches', summary: 'Batches, newest first', query: listQuerySchema },
  { method: 'get', path: '/v1/batches/{id}', summary: 'Status, requestCounts, progress' },
  { method: 'post', path: '/v1/batches/{id}/cancel', summary: 'Cancel: no new chunk starts; 409 when the batch already ended', status: 202 },
  { method: 'get', path: '/v1/batches/{id}/output', summary: 'Scored rows as JSONL in input order (?format=csv for CSV, ?format=parquet for Parquet)' },
  { method: 'get', path: '/v1/batches/{id}/errors', summary: 'Rows that could not be scored, as JSONL with row numbers' },
  {
    method: 'get',
    path: '/v1/batches/{id}/comparison',
    summary:
      "A shadow batch's comparison (shadowVersion): agreement top-1 and within tolerance, per-class confusion, rows that differ, each version's scoring time",
  },
  { method: 'get', path: '/v1/batches/{id}/comparison/diff', summary: "A shadow batch's rows that differ, as JSONL: row, id and both versions' outputs" },
  { method: 'get', path: '/v1/batches/{id}/events', summary: 'Server-sent events with status and progress until the batch ends' },
  {
    method: 'post',
    path: '/v1/datasets',
    summary: 'Upload a dataset (CSV or JSONL as the raw body); 201 with rows and inferred column types',
    query: datasetParamsSchema,
    binary: 'text/csv',
    status: 201,
  },
  { method: 'get', path: '/v1/datasets', summary: 'Datasets of this tenant, newest first', query: datasetListQuerySchema },
  { method: 'get', path: '/v1/datasets/{id}', summary: 'One dataset' },
  {
    method: 'post',
    path: '/v1/jobs/train',
    summary: 'Train a model on a dataset; 202 with the job id, the resolved features and every column (used, or why not)',
    json: trainRequestSchema,
    status: 202,
  },
  {
    method: 'post',
    path: '/v1/jobs/compress',
    summary:
      'Compress a model version (quantize-int8, quantize-int8-static, fp16, prune, distill); 202 with the job id. Or multipart: the JSON as a `request` field, then a `samples` file of inputs (JSONL, CSV or Parquet, as a batch file) to measure agreement on',
    json: compressRequestSchema,
    status: 202,
  },
  { method: 'get', path: '/v1/jobs/{id}', summary: 'A training or compression job: state, progress (the learning curve), result or error' },
  { method: 'post', path: '/v1/jobs/{id}/cancel', summary: 'Cancel a queued or active job; 409 when it already ended', status: 202 },
  {
    method: 'post',
    path: '/openai/v1/files',
    summary: 'OpenAI Files: upload (multipart `file`, `purpose=batch`), streamed to the store',
    binary: 'multipart/form-data',
  },
  { method: 'get', path: '/openai/v1/files', summary: 'OpenAI Files: list', query: openaiListFilesSchema },
  { method: 'get', path: '/openai/v1/files/{id}', summary: 'OpenAI Files: one file object' },
  { method: 'get', path: '/openai/v1/files/{id}/content', summary: 'OpenAI Files: the bytes' },
  { method: 'delete', path: '/openai/v1/files/{id}', summary: 'OpenAI Files: delete' },
  { method: 'post', path: '/openai/v1/batches', summary: "OpenAI Batches: create, on the platform's batch flow", json: openaiBatchSchema },
  { method: 'get', path: '/openai/v1/batches', summary: 'OpenAI Batches: list, newest first', query: openaiListBatchesSchema },
  { method: 'get', path: '/openai/v1/batches/{id}', summary: 'OpenAI Batches: one batch object' },
  { method: 'post', path: '/openai/v1/batches/{id}/cancel', summary: 'OpenAI Batches: cancel' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics of the whole platform' },
  { method: 'get', path: '/openapi.json', summary: 'This document' },
];

const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' });

const errorBody = {
  type: 'object',
  properties: { error: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } }, required: ['code', 'message'] } },
  required: ['error'],
};
const v2ErrorBody = { type: 'object', properties: { error: { type: 'string' } }, required: ['error'] };

export function buildOpenApi(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of ROUTES) {
    const params: unknown[] = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    if (r.query) {
      const shape = jsonSchema(r.query) as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(shape.properties ?? {}))
        params.push({ name, in: 'query', required: shape.required?.includes(name) ?? false, schema });
    }
    const ok = String(r.status ?? 200);
    const err = r.path.startsWith('/v2') ? v2ErrorBody : errorBody;
    (paths[r.path] ??= {})[r.method] = {
      summary: r.summary,
      ...(params.length ? { parameters: params } : {}),
      ...(r.json || r.binary
        ? {
            requestBody: {
              required: true,
              content: {
                ...(r.json ? { 'application/json': { schema: jsonSchema(r.json) } } : {}),
                ...(r.binary ? { [r.binary]: { schema: { type: 'string', format: 'binary' } } } : {}),
              },
            },
          }
        : {}),
      responses: {
        [ok]: { description: 'OK', ...(r.response ? { content: { 'application/json': { schema: jsonSchema(r.response) } } } : {}) },
        '4XX': { description: 'Bad request', content: { 'application/json': { schema: err } } },
      },
    };
  }
  return { openapi: '3.0.3', info: { title: 'modelq', version: SERVER_VERSION }, paths };
}

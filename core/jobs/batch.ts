// Batch scoring jobs: a `finalize` parent on the `batch` queue with one `score` child per chunk
// on the `score` queue (one BullMQ flow per batch), plus the periodic `cleanup` of expired batches.
import { z } from 'zod';
import { metadataList, type VersionRecord } from '../registry.ts';
import { pickWeighted } from '../routing.ts';
import { tensorSpecSchema, type TensorSpec } from '../tensors.ts';
import { processingSchema } from '../processing/spec.ts';
import { pipelineSchema, stepOutputs } from '../processing/pipeline.ts';
import { artifactRefSchema, explainColumnSchema } from './explain.ts';

/** An explained batch (`explain=true`): what is attributed, against which background, how. */
export const batchExplainSchema = z.object({
  input: z.string(),
  output: z.string(),
  features: z.number().int().min(1),
  /** shapley (features models, against `background`) or occlusion (text models: one BYTES input, no background). */
  method: z.enum(['shapley', 'occlusion']).optional(),
  background: artifactRefSchema.optional(),
  /** A column-input model: one Shapley player per column (attributions in this order); no background: one row of missing values. */
  columns: z.array(explainColumnSchema).optional(),
  samples: z.number().int().min(2),
  seed: z.number().int().min(0),
  classIndex: z.number().int().min(0).optional(),
});
export type BatchExplain = z.infer<typeof batchExplainSchema>;

/** What an explained batch's output lines carry besides the model's outputs (also the CSV and Parquet columns). */
export const EXPLAIN_OUTPUT_NAMES = ['attributions', 'explain_base', 'explain_class', 'explain_tokens'] as const;
export const explainOutputSpecs = (e: BatchExplain): TensorSpec[] => [
  ...(e.method === 'occlusion' ? [{ name: 'explain_tokens', datatype: 'BYTES' as const, shape: [-1, -1] }] : []),
  { name: 'attributions', datatype: 'FP32', shape: [-1, e.method === 'occlusion' ? -1 : e.features] },
  { name: 'explain_base', datatype: 'FP32', shape: [-1] },
  { name: 'explain_class', datatype: 'INT32', shape: [-1] },
];

export const BATCH_STATUSES = ['queued', 'running', 'finalizing', 'completed', 'failed', 'cancelling', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];
export const FINAL_STATUSES: readonly BatchStatus[] = ['completed', 'failed', 'cancelled'];

export const scoreJobSchema = z.object({
  batchId: z.string(),
  index: z.number().int().min(0),
  start: z.number().int().min(0),
  end: z.number().int().min(0),
  firstRow: z.number().int().min(0),
  /** 0: not counted (a JSONL/CSV byte range of a batch by reference, planned without reading it). */
  rows: z.number().int().min(0),
  /** By reference: the index of the chunk's object in the spec's `source.files`. */
  file: z.number().int().min(0).optional(),
});
export type ScoreJob = z.infer<typeof scoreJobSchema>;

/** By reference: where a chunk's part was written, for the manifest (written whole, so its hash is known). */
export const partInfoSchema = z.object({
  uri: z.string(),
  bytes: z.number().int(),
  sha256: z.string(),
  errorsUri: z.string(),
  errorsBytes: z.number().int(),
  errorsSha256: z.string(),
  /** The chunk's object (its index in `source.files`), its range, and (Parquet) its first row there. */
  file: z.number().int(),
  start: z.number().int(),
  end: z.number().int(),
  firstRow: z.number().int(),
});
export type PartInfo = z.infer<typeof partInfoSchema>;

export const scoreResultSchema = z.object({
  completed: z.number().int(),
  failed: z.number().int(),
  skipped: z.boolean().optional(),
  part: partInfoSchema.optional(),
  version: z.number().int().optional(),
  ms: z.number().optional(),
  shadow: z.object({ completed: z.number().int(), failed: z.number().int(), ms: z.number() }).optional(),
});
export type ScoreResult = z.infer<typeof scoreResultSchema>;

export const finalizeJobSchema = z.object({ batchId: z.string() });
export type FinalizeJob = z.infer<typeof finalizeJobSchema>;

const parquetPlanSchema = z.object({ mode: z.enum(['lists', 'scalars']), columns: z.array(z.string()), id: z.string().optional() });

export const OUTPUT_FORMATS = ['jsonl', 'csv', 'parquet'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A batch by reference: the objects it reads (planned at submit from listings and footers alone). */
export const batchSourceSchema = z.object({
  /** As the request named it (a URI, a list of them, a glob). */
  uris: z.array(z.string()),
  /** `file`: each object is one row, a file for the model's declared processing (chunks name a run of objects). */
  each: z.literal('file').optional(),
  files: z.array(
    z.object({
      uri: z.string(),
      bytes: z.number().int(),
      /** Batches of files: the row's id, the object's path under the input prefix. */
      name: z.string().optional(),
      /** CSV: this file's header line. */
      header: z.string().optional(),
      /** Parquet: how this file's columns feed the model. */
      parquet: parquetPlanSchema.optional(),
    }),
  ),
});
export type BatchSource = z.infer<typeof batchSourceSchema>;

/** The model part of a batch's spec, from its version record. */
export function batchModel(v: VersionRecord): BatchSpec['model'] {
  const classes = metadataList<string | number>(v, 'classes')?.filter((c) => typeof c === 'string' || typeof c === 'number');
  return {
    name: v.name,
    version: v.version,
    sha256: v.sha256,
    inputs: v.inputs,
    outputs: v.outputs,
    ...(classes?.length ? { classes } : {}),
    ...(v.processing ? { processing: v.processing } : {}),
    ...(v.pipeline ? { pipeline: v.pipeline } : {}),
  };
}

/** How CSV output names per-class columns: the model's classes over its own outputs (never an explanation's). */
export function csvClasses(spec: Pick<BatchSpec, 'model'>): { values: (string | number)[]; outputs: string[] } | undefined {
  // Declared processing's labels name the classes of the output it post-processes and of its probabilities.
  const p = spec.model.processing;
  if (p?.labels && p.post) return { values: p.labels, outputs: [p.post.output, ...(p.post.softmax ? ['probabilities'] : [])] };
  return spec.model.classes ? { values: spec.model.classes, outputs: spec.model.outputs.map((o) => o.name) } : undefined;
}

/** The outputs a batch's rows carry: the model's, and those its declared post-processing adds (label, top-k, probabilities). */
export const batchOutputSpecs = (spec: Pick<BatchSpec, 'model'>): TensorSpec[] =>
  spec.model.processing ? stepOutputs({ outputs: spec.model.outputs, processing: spec.model.processing }) : spec.model.outputs;

/** What a batch is, fixed at submit. Its status and counts live beside it and change. */
export const batchSpecSchema = z.object({
  id: z.string(),
  tenant: z.string().optional(),
  model: z.object({
    name: z.string(),
    version: z.number().int(),
    sha256: z.string(),
    inputs: z.array(tensorSpecSchema),
    outputs: z.array(tensorSpecSchema),
    /** A classifier's classes, in output order: CSV columns are named by class (`probabilities_yes`). */
    classes: z.array(z.union([z.string(), z.number()])).optional(),
    /** Declared processing: rows carry files, scored by workers/processing/score-files.ts. */
    processing: processingSchema.optional(),
    /** A pipeline's steps: rows are JSONL, scored by workers/processing/pipeline.ts. */
    pipeline: pipelineSchema.optional(),
  }),
  format: z.enum(['jsonl', 'csv', 'parquet']),
  inputKey: z.string(),
  bytes: z.number().int(),
  totalRows: z.number().int(),
  chunks: z.number().int(),
  chunkRows: z.number().int(),
  /** CSV header line. */
  header: z.string().optional(),
  /** CSV field separator when not a comma (the `delimiter` parameter). */
  delimiter: z.enum([';', '|', '\t']).optional(),
  /** Parquet: how the file's columns feed the model (core/rows/parquet.ts). */
  parquet: parquetPlanSchema.optional(),
  /**
   * An upload stored one object per chunk (batchKeys.inputPart) as it arrives, each chunk enqueued
   * once its bytes are stored, so scoring starts while later rows are still arriving.
   */
  inputParts: z.boolean().optional(),
  /** Still arriving: rows, chunks and bytes are those so far (the status shows `total: null`). */
  uploading: z.boolean().optional(),
  /** By reference: the objects read (then `inputKey` is empty). */
  source: batchSourceSchema.optional(),
  /** By reference: the prefix the parts and the manifest go to (ends with '/'), and their format. */
  output: z.object({ uri: z.string(), format: z.enum(OUTPUT_FORMATS) }).optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  /** The file's columns that feed no input (a target, notes), `id` aside; JSONL: the first row's keys. */
  ignoredColumns: z.array(z.string()).optional(),
  /** Attributions added to every output line. */
  explain: batchExplainSchema.optional(),
  /**
   * Submitted over a weighted alias: the split's versions (with weight). Each chunk is scored by one
   * of them, picked by the hash of `{batch id}:{chunk index}` (chunkSpec), and every output row names
   * its version (`model_version`).
   */
  route: z.array(z.object({ version: z.number().int(), weight: z.number().int(), sha256: z.string() })).optional(),
  /** A shadow batch: every row is also scored by this candidate version, and the two are compared (batch-compare.ts). */
  shadow: z.object({ version: z.number().int(), sha256: z.string() }).optional(),
  createdAt: z.string(),
  expiresAt: z.string(),
});
export type BatchSpec = z.infer<typeof batchSpecSchema>;

/** The spec a chunk is scored with: over a weighted alias, the version its route key picks (stable across reruns of the chunk). */
export function chunkSpec(spec: BatchSpec, index: number): BatchSpec {
  if (!spec.route?.length) return spec;
  const v =
    spec.route[
      pickWeighted(
        spec.route.map((r) => r.weight),
        `${spec.id}:${index}`,
        spec.model.name,
      )
    ]!;
  return v.version === spec.model.version ? spec : { ...spec, model: { ...spec.model, version: v.version, sha256: v.sha256 } };
}

/** Whether a batch's output rows carry `model_version` (a column in CSV and Parquet): batches over a weighted alias and shadow batches. */
export const versionedOutput = (spec: Pick<BatchSpec, 'route' | 'shadow'>): boolean => !!spec.route?.length || !!spec.shadow;

/**
 * The spec a shadow batch's candidate pass is scored with: the candidate's model, plain JSONL parts
 * under `batches/{id}/shadow/` (its id is `{id}/shadow`), no explanation, no other output format.
 */
export function shadowSpecOf(spec: BatchSpec): BatchSpec {
  const { shadow, route: _route, output: _output, explain: _explain, ...rest } = spec;
  if (!shadow) throw new Error(`batch ${spec.id} has no shadow version`);
  return { ...rest, id: `${spec.id}/shadow`, model: { ...spec.model, version: shadow.version, sha256: shadow.sha256 } };
}

export const batchKeys = {
  dir: (id: string) => `batches/${id}`,
  input: (id: string) => `batches/${id}/input`,
  /** Chunk `index`'s bytes of an upload stored as it arrives (`inputParts`). */
  inputPart: (id: string, index: number) => batchKeys.inputPartOf(`batches/${id}/input-`, index),
  /** The same from the spec's `inputKey` (`batches/<id>/input-`), which a shadow pass's spec keeps under an id of its own. */
  inputPartOf: (inputKey: string, index: number) => `${inputKey}${String(index).padStart(6, '0')}`,
  output: (id: string, index: number) => `batches/${id}/out/${String(index).padStart(6, '0')}.jsonl`,
  errors: (id: string, index: number) => `batches/${id}/err/${String(index).padStart(6, '0')}.jsonl`,
  /** A shadow batch's comparison report (JSON) and the rows where the two versions differ (JSONL). */
  comparison: (id: string) => `batches/${id}/comparison.json`,
  comparisonDiff: (id: string) => `batches/${id}/comparison-diff.jsonl`,
};

/** A batch by reference's files under its output prefix (`prefix` ends with '/'): deterministic, so a rerun chunk replaces its part. */
export const outputPrefixKeys = {
  part: (prefix: string, index: number, ext: OutputFormat) => `${prefix}part-${String(index).padStart(5, '0')}.${ext}`,
  errors: (prefix: string, index: number) => `${prefix}_errors/part-${String(index).padStart(5, '0')}.jsonl`,
  manifest: (prefix: string) => `${prefix}_manifest.json`,
};

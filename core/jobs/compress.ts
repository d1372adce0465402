// Job kind "compress" on the `compress` queue: a model version in, a smaller version out with a
// before/after report. Options are checked per method at the HTTP edge and again in the processor.
import { z } from 'zod';
import { NAME_RE } from '../registry.ts';
import { tensorSchema } from '../tensors.ts';

export const COMPRESS_JOB_ID_RE = /^compress_[0-9a-f]{20}$/;
export const COMPRESS_METHODS = ['quantize-int8', 'quantize-int8-static', 'fp16', 'prune', 'distill'] as const;
export type CompressMethod = (typeof COMPRESS_METHODS)[number];

/** Distillation defaults (documented in docs/training-and-compression.md, "Distillation"): a tenth of the dataset is held out to stop early and to measure agreement. */
export const DISTILL_DEFAULTS = { epochs: 200, temperature: 2, batchSize: 256, learningRate: 0.001, patience: 30, seed: 1, heldOut: 0.1, noise: 0.1 } as const;

/** Request-supplied calibration inputs are capped: they travel in the job's data, through Redis. */
export const MAX_CALIBRATION_VALUES = 1_000_000;

/** Calibration feeds: each one a list of input tensors as in an inference request (name, datatype, shape, data). */
const calibrationSchema = z
  .array(z.array(tensorSchema).min(1).max(64))
  .min(1)
  .max(64)
  .refine(
    (feeds) => feeds.flat().reduce((n, t) => n + t.data.length, 0) <= MAX_CALIBRATION_VALUES,
    `must hold at most ${MAX_CALIBRATION_VALUES} values in all (use a dataset for more)`,
  );

/** What a candidate must keep of its parent to be registered (defaults per method in workers/compression/verdict.ts). */
export const toleranceSchema = z
  .object({
    /** Cosine similarity of every float output, parent vs candidate, over the measuring data. */
    cosine: z.number().min(-1).max(1).optional(),
    /** Share of rows whose top class (argmax, or label) is the parent's. */
    top1: z.number().min(0).max(1).optional(),
    /** Largest accepted fall in accuracy on a labelled dataset (replaces top1 there). */
    accuracyDrop: z.number().min(0).max(1).optional(),
  })
  .strict();
export type Tolerance = z.infer<typeof toleranceSchema>;

export const methodOptions = {
  'quantize-int8': z.object({ perChannel: z.boolean().default(false) }).strict(),
  'quantize-int8-static': z
    .object({
      /** One weight scale per output channel (moves the model to opset 13). Default true. */
      perChannel: z.boolean().default(true),
      /** Calibration inputs; default: the dataset's rows when the job names one, else generated sample inputs. */
      calibration: calibrationSchema.optional(),
    })
    .strict(),
  fp16: z.object({}).strict(),
  /**
   * Structured by default (hidden units and conv channels removed: a smaller, faster file): `keep`
   * (share kept), `sparsity` (share removed) or `targetAgreement` (the smallest model whose top-1
   * agreement, or cosine for outputs without classes, stays at or above it; the default, 0.98).
   * `structured: false` with `sparsity`: magnitude pruning, zeros in place (the file keeps its size).
   */
  prune: z.union([
    z.object({ structured: z.literal(true).optional(), keep: z.number().gt(0).max(1) }).strict(),
    z.object({ structured: z.literal(true).optional(), sparsity: z.number().gt(0).lt(1) }).strict(),
    z.object({ structured: z.literal(true).optional(), targetAgreement: z.number().gt(0).max(1).default(0.98) }).strict(),
    z.object({ structured: z.literal(false), sparsity: z.number().gt(0).lt(1) }).strict(),
  ]),
  distill: z
    .object({
      hidden: z.array(z.number().int().min(1).max(4096)).min(1).max(8),
      epochs: z.number().int().min(1).max(1000).default(DISTILL_DEFAULTS.epochs),
      temperature: z.number().gt(0).max(100).default(DISTILL_DEFAULTS.temperature),
      batchSize: z.number().int().min(1).max(65_536).default(DISTILL_DEFAULTS.batchSize),
      learningRate: z.number().gt(0).max(10).default(DISTILL_DEFAULTS.learningRate),
      patience: z.number().int().min(1).max(1000).default(DISTILL_DEFAULTS.patience),
      seed: z
        .number()
        .int()
        .min(0)
        .max(2 ** 31 - 1)
        .default(DISTILL_DEFAULTS.seed),
      augment: z.number().int().min(0).max(100).optional(),
      noise: z.number().min(0).max(10).default(DISTILL_DEFAULTS.noise),
    })
    .strict(),
} as const;

export const compressRequestSchema = z
  .object({
    model: z.string().min(1).max(200).meta({ description: 'Model reference: name, name@alias or name@3' }),
    method: z.enum(COMPRESS_METHODS),
    options: z.record(z.string(), z.unknown()).optional().meta({
      description:
        'quantize-int8: { perChannel }; quantize-int8-static: { perChannel (default true), calibration: [[{ name, datatype, shape, data }, ...], ...] (default: the dataset rows, else generated inputs) }; prune: { keep } | { sparsity } | { targetAgreement (default 0.98) } structured, or { structured: false, sparsity } magnitude; distill: { hidden, epochs, temperature, batchSize, learningRate, patience, seed, augment, noise }',
    }),
    dataset: z.string().min(1).max(100).optional().meta({
      description:
        "Dataset id: agreement and accuracy before/after on its rows; required for distill (the teacher labels its rows). Default: the model's training dataset from its lineage, unless the request uploads `samples` (multipart); generated inputs when neither exists",
    }),
    features: z.array(z.string().min(1).max(200)).min(1).max(100_000).optional().meta({
      description:
        "Dataset columns fed to the model, in input order. Default: those of the parent's training lineage, else every numeric column but the target",
    }),
    target: z.string().min(1).max(200).optional().meta({ description: "Dataset column with the true values. Default: the parent's training target" }),
    registerAs: z.string().regex(NAME_RE, 'must match [a-z0-9][a-z0-9._-]{0,63}').optional().meta({ description: 'Default: the same model name' }),
    tolerance: toleranceSchema.optional().meta({
      description:
        'What the result must keep of its parent, else it is not registered: { cosine, top1, accuracyDrop }. Defaults: fp16 cosine 0.999 and top1 0.99; int8 cosine 0.99 and top1 0.97, or an accuracy drop of at most 0.01 on a labelled dataset; prune and distill none',
    }),
    allowSlower: z
      .boolean()
      .optional()
      .meta({ description: 'Register an int8 or pruned result that is slower than its parent at batch 1 and 32 (refused by default)' }),
  })
  .strict();
export type CompressRequest = z.infer<typeof compressRequestSchema>;

/** A `samples` upload in the artifact store: its key, format, size and rows (counted at upload; read again by the worker). */
export const samplesRefSchema = z.object({
  key: z.string(),
  format: z.enum(['jsonl', 'csv', 'parquet']),
  bytes: z.number().int(),
  rows: z.number().int(),
  filename: z.string().optional(),
});
export type SamplesRef = z.infer<typeof samplesRefSchema>;

export const compressJobSchema = z.object({
  model: z.object({ name: z.string(), version: z.number().int(), sha256: z.string() }),
  method: z.enum(COMPRESS_METHODS),
  options: z.record(z.string(), z.unknown()),
  dataset: z
    .object({
      id: z.string(),
      key: z.string(),
      format: z.enum(['csv', 'jsonl']),
      rows: z.number().int(),
      /** Not named by the request: the model's training dataset, from its lineage. */
      fromLineage: z.boolean().optional(),
    })
    .optional(),
  /** Inputs the request uploaded (multipart `samples`), stored apart: agreement is measured on them. */
  samples: samplesRefSchema.optional(),
  features: z.array(z.string()).optional(),
  target: z.string().optional(),
  registerAs: z.string().regex(NAME_RE),
  tolerance: toleranceSchema.optional(),
  allowSlower: z.boolean().optional(),
  tenant: z.string().optional(),
  /** Who submitted it (key id, never the key), recorded in the new version's lineage. */
  keyId: z.string().optional(),
  /** Submitted by a platform operator, who may add versions to any tenant's model. */
  platform: z.boolean().optional(),
});
export type CompressJob = z.infer<typeof compressJobSchema>;

export interface CompressReport {
  method: CompressMethod;
  options: Record<string, unknown>;
  bytesBefore: number;
  bytesAfter: number;
  /** Rows per second on the worker's engine at `batchSize` rows per run. */
  rowsPerSecondBefore: number;
  rowsPerSecondAfter: number;
  batchSize: number;
  /** Rows per second at batch 1 (one request at a time). */
  rowsPerSecondBatch1Before?: number;
  rowsPerSecondBatch1After?: number;
  /** On the measuring data (verdict.data: the dataset rows, or generated inputs shaped as `sampleShape`, valued as `sampleInputs` says). */
  maxAbsDiff: number;
  /** The lowest top-1 agreement over the outputs with a class per row (absent when none has one). */
  argmaxAgreement?: number;
  /** The lowest cosine similarity over the float outputs, parent vs result, on the measuring data. */
  cosine?: number;
  sampleShape: Record<string, number[]>;
  sampleInputs?: Record<string, string>;
  /** When the job names a dataset: the same comparison on its rows, and accuracy (or RMSE) against its target. */
  dataset?: DatasetReport;
  /** The data the verdict was measured on, per-output figures there, the tolerance and the outcome. */
  verdict?: Verdict;
  /** CPU of the worker that measured (int8 kernels differ with VNNI). */
  cpu?: { model: string; flags: string[] };
  details?: Record<string, unknown>;
}

export interface DatasetReport {
  id: string;
  rows: number;
  features: string[];
  target?: string;
  /** Classification: share of rows whose predicted class is the target's. */
  accuracyBefore?: number;
  accuracyAfter?: number;
  /** Regression: root mean squared error in target units. */
  rmseBefore?: number;
  rmseAfter?: number;
  maxAbsDiff: number;
  argmaxAgreement?: number;
}

export interface OutputFigures {
  name: string;
  values: number;
  cosine?: number;
  maxAbsDiff?: number;
  /** Share of rows with the parent's top class, over `rows` rows. */
  top1?: number;
  rows?: number;
  /** Set when the candidate's output is one value everywhere (and the parent's is not). */
  constantInCandidate?: number;
  /** NaN or infinite values in the candidate's output (not counted in cosine and maxAbsDiff). */
  nonFinite?: number;
}

export interface Verdict {
  /** dataset: a registered dataset's rows; samples: the rows the request uploaded; generated: inputs made from the graph. */
  data: 'dataset' | 'samples' | 'generated';
  /** The same in words: which dataset, file or generator, and how many rows. */
  source?: string;
  rows: number;
  outputs: OutputFigures[];
  tolerance: Tolerance;
  passed: boolean;
  worst?: { output: string; measure: string; value: number; bar: number };
  failures: string[];
  /** Set when the candidate is slower than its parent at batch 1 and at batchSize. */
  slower?: boolean;
}

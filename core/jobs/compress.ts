// Job kind "compress" on the `compress` queue: a model version in, a smaller version out with a
// before/after report. Options are checked per method at the HTTP edge and again in the processor.
import { z } from 'zod';
import { NAME_RE } from '../registry.ts';

export const COMPRESS_JOB_ID_RE = /^compress_[0-9a-f]{20}$/;
export const COMPRESS_METHODS = ['quantize-int8', 'fp16', 'prune', 'distill'] as const;
export type CompressMethod = (typeof COMPRESS_METHODS)[number];

export const methodOptions = {
  'quantize-int8': z.object({ perChannel: z.boolean().default(false) }).strict(),
  fp16: z.object({}).strict(),
  prune: z.union([
    z.object({ structured: z.literal(true), keep: z.number().gt(0).max(1) }).strict(),
    z.object({ sparsity: z.number().gt(0).lt(1), structured: z.literal(false).optional() }).strict(),
  ]),
  distill: z.object({ hidden: z.array(z.number().int().min(1).max(4096)).min(1).max(8), epochs: z.number().int().min(1).max(1000).default(30), temperature: z.number().gt(0).max(100).default(2) }).strict(),
} as const;

export const compressRequestSchema = z.object({
  model: z.string().min(1).max(200).meta({ description: 'Model reference: name, name@alias or name@3' }),
  method: z.enum(COMPRESS_METHODS),
  options: z.record(z.string(), z.unknown()).optional().meta({ description: 'quantize-int8: { perChannel }; prune: { sparsity } or { structured: true, keep }; distill: { hidden, epochs, temperature }' }),
  dataset: z.string().min(1).max(100).optional().meta({ description: 'Dataset for accuracy before/after (and the teacher\'s inputs for distill)' }),
  registerAs: z.string().regex(NAME_RE, 'must match [a-z0-9][a-z0-9._-]{0,63}').optional().meta({ description: 'Default: the same model name' }),
}).strict();
export type CompressRequest = z.infer<typeof compressRequestSchema>;

export const compressJobSchema = z.object({
  model: z.object({ name: z.string(), version: z.number().int(), sha256: z.string() }),
  method: z.enum(COMPRESS_METHODS),
  options: z.record(z.string(), z.unknown()),
  dataset: z.string().optional(),
  registerAs: z.string().regex(NAME_RE),
  tenant: z.string().optional(),
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
  /** On generated sample inputs (dynamic dimensions given the sizes in `sampleShape`). */
  maxAbsDiff: number;
  argmaxAgreement: number;
  sampleShape: Record<string, number[]>;
  details?: Record<string, unknown>;
}

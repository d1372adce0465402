// Job kind "infer" on the `infer` queue: one or more validated online requests for one model
// version. Several requests may share a job (the producer coalesces them); each gets its own answer.
import { z } from 'zod';
import { tensorSchema } from '../tensors.ts';

export const modelTargetSchema = z.object({
  name: z.string(),
  version: z.number().int().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ModelTarget = z.infer<typeof modelTargetSchema>;

export const inferRequestSchema = z.object({
  inputs: z.array(tensorSchema).min(1),
  /** Output names to return; all when absent. */
  outputs: z.array(z.string()).optional(),
  /** Epoch ms after which nobody waits for the answer: then the request is not computed. */
  deadline: z.number().optional(),
});
export type InferRequest = z.infer<typeof inferRequestSchema>;

/** Dynamic batching settings of the model (registry config) and whether it can batch at all. */
export const batchingSchema = z.object({
  maxBatch: z.number().int().min(1),
  maxDelayMs: z.number().min(0),
  instances: z.number().int().min(1),
  /** Every input and output has a dynamic first dimension. */
  batchable: z.boolean(),
});
export type Batching = z.infer<typeof batchingSchema>;

export const inferJobSchema = z.object({
  model: modelTargetSchema,
  /** Absent in jobs from older producers: then requests run one by one. */
  batching: batchingSchema.optional(),
  requests: z.array(inferRequestSchema).min(1),
});
export type InferJob = z.infer<typeof inferJobSchema>;

export const inferResponseSchema = z.union([
  z.object({ ok: z.literal(true), outputs: z.array(tensorSchema) }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type InferResponse = z.infer<typeof inferResponseSchema>;

export const inferResultSchema = z.object({ responses: z.array(inferResponseSchema) });
export type InferResult = z.infer<typeof inferResultSchema>;

/** Upper bounds of the batch-size histogram buckets (rows per onnxruntime run). */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

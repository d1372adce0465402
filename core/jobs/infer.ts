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
});
export type InferRequest = z.infer<typeof inferRequestSchema>;

export const inferJobSchema = z.object({
  model: modelTargetSchema,
  requests: z.array(inferRequestSchema).min(1),
  /** Epoch ms after which nobody waits for the answer: such requests are not computed. */
  deadline: z.number().optional(),
});
export type InferJob = z.infer<typeof inferJobSchema>;

export const inferResponseSchema = z.union([
  z.object({ ok: z.literal(true), outputs: z.array(tensorSchema) }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);
export type InferResponse = z.infer<typeof inferResponseSchema>;

export const inferResultSchema = z.object({ responses: z.array(inferResponseSchema) });
export type InferResult = z.infer<typeof inferResultSchema>;

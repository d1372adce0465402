// Job kind "inspect" on the `model` queue: load an uploaded file in the engine and read its signature.
import { z } from 'zod';
import { tensorSpecSchema } from '../tensors.ts';

export const inspectJobSchema = z.object({
  /** Artifact key of the uploaded file. */
  key: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type InspectJob = z.infer<typeof inspectJobSchema>;

export const signatureSchema = z.object({
  inputs: z.array(tensorSpecSchema),
  outputs: z.array(tensorSpecSchema),
});
export type Signature = z.infer<typeof signatureSchema>;
export const inspectResultSchema = signatureSchema;

// The reference profile of a version's inputs, as stored: per feature, quantile bins with their
// expected shares (numeric), category shares (categorical) or word shares (text), and where it lies.
import { z } from 'zod';

/** Quantile bins per numeric feature, and categories kept per categorical one (the rest count as "other"). */
export const NUMERIC_BINS = 10;
export const MAX_CATEGORIES = 20;
/** Words kept per text feature (the rest count as "other"). */
export const MAX_TEXT_TOKENS = 100;
/** A string feature whose values hold at least this many words on average is text (word frequencies), else categorical. */
export const TEXT_MIN_WORDS = 2;

export const featureProfileSchema = z.discriminatedUnion('kind', [
  z.object({
    name: z.string(),
    input: z.string(),
    column: z.number().int(),
    kind: z.literal('numeric'),
    /** Inner cut points, ascending: bin i holds edges[i-1] <= v < edges[i]. */
    edges: z.array(z.number()),
    expected: z.array(z.number()),
  }),
  z.object({
    name: z.string(),
    input: z.string(),
    column: z.number().int(),
    kind: z.literal('categorical'),
    /** Expected shares of `categories`, then of every other value. */
    categories: z.array(z.string()),
    expected: z.array(z.number()),
  }),
  z.object({
    name: z.string(),
    input: z.string(),
    column: z.number().int(),
    kind: z.literal('text'),
    /** Expected shares of word occurrences: of `tokens` (the most frequent words, lower-cased), then of every other word. */
    tokens: z.array(z.string()),
    expected: z.array(z.number()),
  }),
]);
export type FeatureProfile = z.infer<typeof featureProfileSchema>;
export const driftProfileSchema = z.object({ rows: z.number().int(), features: z.array(featureProfileSchema) });
export type DriftProfile = z.infer<typeof driftProfileSchema>;

/** Store key of a reference profile (content-addressed by the profile's sha256). */
export const referenceKey = (sha256: string) => `drift/reference/${sha256}.json`;
/** Store key of the reference a training job writes for the version it registers. */
export const trainReferenceKey = (jobId: string) => `jobs/train/${jobId}/reference.json`;

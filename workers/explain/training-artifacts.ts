// What a training run leaves for explanation and drift: a seeded sample of training rows as the
// background, and the reference profile of the training split's features.
import { trainBackgroundKey } from '../../core/jobs/explain.ts';
import { buildProfile, trainReferenceKey } from '../../core/drift.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { Rng } from '../trainer/data.ts';

export interface TrainingRows {
  /** Training rows, row-major [rows, features.length]. */
  x: Float32Array;
  features: string[];
  backgroundRows: number;
  seed: number;
}

type Ref = { key: string; rows: number; features: number };

export async function writeExplainArtifacts(store: ArtifactStore, jobId: string, t: TrainingRows): Promise<{ background?: Ref; reference: Ref }> {
  const F = t.features.length;
  const rows = t.x.length / F;
  const slots = t.features.map((name, column) => ({ name, input: 'features', column, categorical: false }));
  const values = slots.map((_, k) => Array.from({ length: rows }, (_, r) => t.x[r * F + k]!));
  const reference = { key: trainReferenceKey(jobId), rows, features: F };
  await store.put(reference.key, JSON.stringify(buildProfile(slots, values)));
  const k = Math.min(t.backgroundRows, rows);
  if (k === 0) return { reference };
  const pick = new Rng(t.seed ^ 0xbac6).shuffle(Int32Array.from({ length: rows }, (_, i) => i)).subarray(0, k);
  const x: number[] = [];
  for (const r of pick) for (let f = 0; f < F; f++) x.push(t.x[r * F + f]!);
  const background = { key: trainBackgroundKey(jobId), rows: k, features: F };
  await store.put(background.key, JSON.stringify({ features: F, x }));
  return { background, reference };
}

// What a training run leaves for explanation and drift: a seeded sample of training rows as the
// background (rows of numeric features, or for a column-input model one array per column), and the reference
// profile of the training split's inputs: quantile bins per numeric feature, category shares per
// category column and word shares per text column, slotted as the model's inputs are (numeric
// features as columns of `features`, each string column its own input), as drift samples them.
import { trainBackgroundKey, type ColumnBackground } from '../../core/jobs/explain.ts';
import { buildProfile, trainReferenceKey, type Slot } from '../../core/drift.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { Rng } from '../trainer/data.ts';

export interface TrainingRows {
  /** Training rows' numeric features, row-major [rows, features.length]. */
  x: Float32Array;
  /** Names of the numeric features (columns of the `features` input). */
  features: string[];
  /** Category and text columns (each an input of the model), their training rows' raw values (missing as ""). */
  strings?: { name: string; kind: 'category' | 'text'; values: string[] }[];
  /**
   * A column-input model (one input per source column): its training rows by column (numbers with
   * NaN or null missing, strings with "" or null missing). Given, the background is these columns'
   * values of a seeded sample of rows, stored per column (mixed models included).
   */
  columns?: { name: string; type: 'number' | 'category' | 'text'; values: ArrayLike<number | string | null> }[];
  backgroundRows: number;
  seed: number;
}

type Ref = { key: string; rows: number; features: number };

export async function writeExplainArtifacts(store: ArtifactStore, jobId: string, t: TrainingRows): Promise<{ background?: Ref; reference: Ref }> {
  const F = t.features.length;
  const strings = t.strings ?? [];
  const rows = F ? t.x.length / F : (strings[0]?.values.length ?? 0);
  const slots: Slot[] = t.features.map((name, column) => ({ name, input: 'features', column, categorical: false }));
  const values: (number | string)[][] = slots.map((_, k) => Array.from({ length: rows }, (_, r) => t.x[r * F + k]!));
  for (const s of strings) {
    slots.push({ name: s.name, input: s.name, column: 0, categorical: true, text: s.kind === 'text' });
    values.push(s.values);
  }
  const reference = { key: trainReferenceKey(jobId), rows, features: slots.length };
  await store.put(reference.key, JSON.stringify(buildProfile(slots, values)));
  if (t.columns?.length) return { background: await writeColumnBackground(store, jobId, t.columns, t), reference };
  const k = strings.length ? 0 : Math.min(t.backgroundRows, rows);
  if (k === 0) return { reference };
  const pick = new Rng(t.seed ^ 0xbac6).shuffle(Int32Array.from({ length: rows }, (_, i) => i)).subarray(0, k);
  const x: number[] = [];
  for (const r of pick) for (let f = 0; f < F; f++) x.push(t.x[r * F + f]!);
  const background = { key: trainBackgroundKey(jobId), rows: k, features: F };
  await store.put(background.key, JSON.stringify({ features: F, x }));
  return { background, reference };
}

/** The background of a column-input model: a seeded sample of training rows, one array per column (null: missing). */
async function writeColumnBackground(store: ArtifactStore, jobId: string, columns: NonNullable<TrainingRows['columns']>, t: TrainingRows): Promise<Ref> {
  const rows = columns[0]!.values.length;
  const k = Math.max(1, Math.min(t.backgroundRows, rows));
  const pick = new Rng(t.seed ^ 0xbac6).shuffle(Int32Array.from({ length: rows }, (_, i) => i)).subarray(0, Math.min(k, rows));
  const missing = (v: number | string | null | undefined) => v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
  const body: ColumnBackground = {
    rows: Math.max(1, pick.length),
    columns: Object.fromEntries(columns.map((c) => [c.name, pick.length ? Array.from(pick, (r) => (missing(c.values[r]) ? null : c.values[r]!)) : [null]])),
  };
  const background = { key: trainBackgroundKey(jobId), rows: body.rows, features: columns.length };
  await store.put(background.key, JSON.stringify(body));
  return background;
}

// What a training run leaves for explanation and drift, by source column as a column-input model's
// inputs are: the reference profile of the training split (quantile bins per numeric column, missing
// values binned as the model's NaN input is; category shares per category column; word shares per
// text column), and a seeded sample of training rows as the explanation background, each column's
// raw values (null for a missing number, "" for a missing string) as the model takes them.
import { trainBackgroundKey, type ColumnBackground } from '../../core/jobs/explain.ts';
import { buildProfile, trainReferenceKey, type Slot } from '../../core/drift/index.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { Rng } from '../training/child/data.ts';

export interface TrainingRows {
  rows: number;
  /** Numeric columns: the training rows' raw values, NaN where missing. */
  numbers: { name: string; values: Float32Array }[];
  /** Category and text columns: the training rows' raw values, "" where missing. */
  strings: { name: string; kind: 'category' | 'text'; values: string[] }[];
  /** The model's inputs in order (every column above once). */
  order: string[];
  backgroundRows: number;
  seed: number;
}

type Ref = { key: string; rows: number; features: number };

export async function writeExplainArtifacts(store: ArtifactStore, jobId: string, t: TrainingRows): Promise<{ background?: Ref; reference: Ref }> {
  const byName = new Map<string, { slot: Slot; values: (number | string)[] }>();
  for (const n of t.numbers) byName.set(n.name, { slot: { name: n.name, input: n.name, column: 0, categorical: false }, values: Array.from(n.values) });
  for (const s of t.strings)
    byName.set(s.name, { slot: { name: s.name, input: s.name, column: 0, categorical: true, text: s.kind === 'text' }, values: s.values });
  const cols = t.order.map((name) => byName.get(name)!);
  const reference = { key: trainReferenceKey(jobId), rows: t.rows, features: cols.length };
  await store.put(
    reference.key,
    JSON.stringify(
      buildProfile(
        cols.map((c) => c.slot),
        cols.map((c) => c.values),
      ),
    ),
  );
  const k = Math.min(t.backgroundRows, t.rows);
  if (k === 0) return { reference };
  const pick = new Rng(t.seed ^ 0xbac6).shuffle(Int32Array.from({ length: t.rows }, (_, i) => i)).subarray(0, k);
  const bg: ColumnBackground = { rows: k, columns: {} };
  for (const c of cols) {
    bg.columns[c.slot.name] = Array.from(pick, (r) => {
      const v = c.values[r]!;
      return typeof v === 'number' && Number.isNaN(v) ? null : v;
    }) as (number | null)[] | string[];
  }
  const background = { key: trainBackgroundKey(jobId), rows: k, features: cols.length };
  await store.put(background.key, JSON.stringify(bg));
  return { background, reference };
}

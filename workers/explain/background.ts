// A version's background rows, read from the artifact store once per worker and kept (they are small:
// tens of rows) in a bounded map keyed by their content-addressed key.
import { AppError } from '../../core/errors.ts';
import { backgroundSchema, columnBackgroundSchema, type ExplainColumn } from '../../core/jobs/explain.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { ColumnValues } from './column-shapley.ts';

const MAX_CACHED = 64;
const cache = new Map<string, Promise<{ x: Float32Array; features: number }>>();
const columnCache = new Map<string, Promise<unknown>>();

export function loadBackground(store: ArtifactStore, key: string): Promise<{ x: Float32Array; features: number }> {
  let p = cache.get(key);
  if (!p) {
    p = store.get(key).then((buf) => {
      const b = backgroundSchema.parse(JSON.parse(buf.toString('utf8')));
      return { x: Float32Array.from(b.x), features: b.features };
    });
    cache.set(key, p);
    p.catch(() => cache.delete(key));
    if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  }
  return p;
}

/** A column-input model's background as one array per column (B rows); no key: one row of missing values (NaN, ""), which the graph imputes. */
export async function loadColumnBackground(store: ArtifactStore, key: string | undefined, columns: ExplainColumn[]): Promise<ColumnValues[]> {
  if (!key) return columns.map((c) => (c.kind === 'number' ? Float32Array.of(NaN) : ['']));
  let p = columnCache.get(key);
  if (!p) {
    p = store.get(key).then((buf) => JSON.parse(buf.toString('utf8')) as unknown);
    columnCache.set(key, p);
    p.catch(() => columnCache.delete(key));
    if (columnCache.size > MAX_CACHED) columnCache.delete(columnCache.keys().next().value!);
  }
  const raw = await p;
  const byColumn = columnBackgroundSchema.safeParse(raw);
  if (byColumn.success) {
    const { rows, columns: values } = byColumn.data;
    return columns.map((c) => {
      const v = values[c.name];
      if (v && v.length !== rows) throw new AppError('bad_request', `the background's column "${c.name}" has ${v.length} values, not ${rows}`);
      // A column the background lacks: missing in every row.
      if (c.kind === 'number') return Float32Array.from({ length: rows }, (_, r) => (typeof v?.[r] === 'number' ? (v[r] as number) : NaN));
      return Array.from({ length: rows }, (_, r) => (v?.[r] === null || v?.[r] === undefined ? '' : String(v[r])));
    });
  }
  // Rows of numbers (PUT .../background): one value per column in input order; string columns missing.
  const m = backgroundSchema.parse(raw);
  if (m.features !== columns.length) throw new AppError('bad_request', `the background has ${m.features} features, the model ${columns.length} columns`);
  const rows = m.x.length / m.features;
  return columns.map((c, f) =>
    c.kind === 'number' ? Float32Array.from({ length: rows }, (_, r) => m.x[r * m.features + f]!) : new Array<string>(rows).fill(''),
  );
}

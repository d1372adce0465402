// A shadow batch's comparison, made by its finalizer: the primary's and the candidate's output parts
// (core/jobs/batch.ts shadowSpecOf) are read chunk by chunk, line by line, and joined on the row
// number (each part is in row order), so memory holds one line of each whatever the batch's size.
// Every row both scored is judged as the online shadow comparison judges a request
// (core/shadow-compare.ts compareRow); the rows that differ (not within tolerance, or scored by one
// version only) are written as JSONL beside the report.
import { batchKeys, shadowSpecOf, type BatchSpec } from '../../core/jobs/batch.ts';
import type { ChunkOutcome } from '../../core/batches.ts';
import { compareRow, SHADOW_TOLERANCE, type RowOutputs } from '../../core/shadow-compare.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';

/** Distinct classes the confusion table keeps per side; the rest are counted under OTHER_CLASS. */
export const MAX_CONFUSION_CLASSES = 256;
export const OTHER_CLASS = '(other)';

export interface BatchComparison {
  batch: string;
  model: string;
  /** The versions that scored the primary pass (several over a weighted alias) and the candidate. */
  primary: { versions: number[]; completed: number; failed: number; ms: number; msPerRow: number | null };
  shadow: { version: number; completed: number; failed: number; ms: number; msPerRow: number | null };
  /** Rows both scored. */
  compared: number;
  /** Of those, rows with the same top-1 (arg max of the first common output, or the same label). */
  agreed: number;
  /** Of those, rows whose every value of every common output is within `tolerance` (relative above 1). */
  withinTolerance: number;
  tolerance: number;
  /** agreed / compared (null without compared rows). */
  agreement: number | null;
  /** Rows written to the diff: not within tolerance, or scored by one version only. */
  differ: number;
  /** Rows the primary scored and the candidate failed, and the other way round. */
  onlyPrimary: number;
  onlyShadow: number;
  /** Primary top-1 class -> candidate top-1 class -> rows (compared rows). */
  confusion: Record<string, Record<string, number>>;
}

interface Line {
  row: number;
  id?: unknown;
  outputs: RowOutputs;
}

/** The lines of a stored JSONL object, parsed one at a time (none when it is missing). */
async function* linesOf(store: ArtifactStore, key: string): AsyncGenerator<Line> {
  if (!(await store.stat(key))) return;
  let rest = '';
  for await (const b of await store.read(key)) {
    const parts = (rest + (b as Buffer).toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    for (const l of parts) if (l) yield JSON.parse(l) as Line;
  }
  if (rest.trim()) yield JSON.parse(rest) as Line;
}

export async function compareShadowBatch(spec: BatchSpec, outcomes: Map<number, ChunkOutcome>, store: ArtifactStore): Promise<BatchComparison> {
  const shadowSpec = shadowSpecOf(spec);
  const sum = (f: (o: ChunkOutcome) => number) => [...outcomes.values()].reduce((n, o) => n + f(o), 0);
  const primaryRows = sum((o) => o.completed);
  const shadowRows = sum((o) => o.shadow?.completed ?? 0);
  const primaryMs = sum((o) => o.ms ?? 0);
  const shadowMs = sum((o) => o.shadow?.ms ?? 0);
  const versions = [...new Set([...outcomes.values()].map((o) => o.version ?? spec.model.version))].sort((a, b) => a - b);
  const r: BatchComparison = {
    batch: spec.id,
    model: spec.model.name,
    primary: { versions, completed: primaryRows, failed: sum((o) => o.failed), ms: primaryMs, msPerRow: primaryRows ? primaryMs / primaryRows : null },
    shadow: {
      version: spec.shadow!.version,
      completed: shadowRows,
      failed: sum((o) => o.shadow?.failed ?? 0),
      ms: shadowMs,
      msPerRow: shadowRows ? shadowMs / shadowRows : null,
    },
    compared: 0,
    agreed: 0,
    withinTolerance: 0,
    tolerance: SHADOW_TOLERANCE,
    agreement: null,
    differ: 0,
    onlyPrimary: 0,
    onlyShadow: 0,
    confusion: {},
  };
  const seen = { primary: new Set<string>(), shadow: new Set<string>() };
  const bounded = (side: 'primary' | 'shadow', c: string) => {
    const s = seen[side];
    if (s.has(c)) return c;
    if (s.size >= MAX_CONFUSION_CLASSES) return OTHER_CLASS;
    s.add(c);
    return c;
  };
  const diffLine = (row: number, id: unknown, p: Line | null, s: Line | null) =>
    `${JSON.stringify({ row, ...(id !== undefined ? { id } : {}), primary: p ? p.outputs : null, shadow: s ? s.outputs : null })}\n`;

  async function* diff(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < spec.chunks; i++) {
      const a = linesOf(store, batchKeys.output(spec.id, i));
      const b = linesOf(store, batchKeys.output(shadowSpec.id, i));
      let pa = await a.next();
      let pb = await b.next();
      let text = '';
      while (!pa.done || !pb.done) {
        if (!pa.done && (pb.done || pa.value.row < pb.value.row)) {
          r.onlyPrimary++;
          r.differ++;
          text += diffLine(pa.value.row, pa.value.id, pa.value, null);
          pa = await a.next();
        } else if (!pb.done && (pa.done || pb.value.row < pa.value.row)) {
          r.onlyShadow++;
          r.differ++;
          text += diffLine(pb.value.row, pb.value.id, null, pb.value);
          pb = await b.next();
        } else {
          const p = pa.value as Line;
          const s = pb.value as Line;
          const v = compareRow(p.outputs, s.outputs, spec.model.classes);
          r.compared++;
          if (v.top1) r.agreed++;
          if (v.withinTolerance) r.withinTolerance++;
          else {
            r.differ++;
            text += diffLine(p.row, p.id, p, s);
          }
          const pc = bounded('primary', v.primaryClass);
          const sc = bounded('shadow', v.shadowClass);
          const row = (r.confusion[pc] ??= {});
          row[sc] = (row[sc] ?? 0) + 1;
          pa = await a.next();
          pb = await b.next();
        }
        if (text.length > 1 << 16) {
          yield Buffer.from(text);
          text = '';
        }
      }
      if (text) yield Buffer.from(text);
    }
  }
  await store.put(batchKeys.comparisonDiff(spec.id), diff());
  r.agreement = r.compared ? r.agreed / r.compared : null;
  await store.put(batchKeys.comparison(spec.id), JSON.stringify(r));
  return r;
}

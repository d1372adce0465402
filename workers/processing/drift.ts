// Drift of a model with declared processing, on the worker (core/drift/processed.ts says what is
// watched): the drawn rows' input summaries are taken from the processed feeds before the run (the
// engine takes their buffers over), their output summaries after it, and both go to the version's
// drift window, or to the rows its reference is built from, as batch rows of any model do
// (workers/inference/batch-drift.ts).
import { inputSummaries, outputSummaries, type RowsOf } from '../../core/drift/index.ts';
import type { Processing } from '../../core/processing/spec.ts';
import type { RawTensor } from '../../core/tensors.ts';
import type { BatchDrift, ChunkDrift } from '../inference/batch-drift.ts';
import { MAX_SAMPLED_ROWS } from '../engine/drift-rows.ts';

/** Called with a run's outputs (post-processing's included) once it is done. */
export type AfterRun = (out: Record<string, RawTensor>) => void;

/** Rows [0, n) drawn with probability `share`, at most `max`. */
export function drawRows(n: number, share: number, max: number, random: () => number = Math.random): number[] {
  const rows: number[] = [];
  for (let r = 0; r < n && rows.length < max; r++) if (share >= 1 || random() < share) rows.push(r);
  return rows;
}

/**
 * A batch chunk's drift: before each run, `before(feeds, n)` draws rows (the chunk's share, at most
 * MAX_SAMPLED_ROWS a chunk) and keeps their input summaries; the returned function adds them with
 * the output summaries. Undefined when nothing is drawn.
 */
export function chunkDrift(p: Processing, drift: ChunkDrift | undefined) {
  let taken = 0;
  return (feeds: Record<string, RawTensor>, n: number): AfterRun | undefined => {
    if (!drift || drift.share <= 0) return undefined;
    const rows = drawRows(n, drift.share, Math.min(MAX_SAMPLED_ROWS - taken, drift.maxRows ?? MAX_SAMPLED_ROWS));
    if (!rows.length) return undefined;
    taken += rows.length;
    const ins = inputSummaries(p, feeds, rows);
    return (out) => drift.add([...ins, ...outputSummaries(out, rows)]);
  };
}

/**
 * An online request the producer drew for drift (its `drift` flag: the owner's traffic, drawn at
 * MODELQ_DRIFT_SAMPLE, or every request while the version's reference rows gather): all its rows are
 * summarised and written once the answer is computed, off the request's path (never awaited, never throws).
 */
export function requestDrift(
  m: { name: string; version: number; processing?: Processing | undefined },
  drift: BatchDrift,
  feeds: Record<string, RawTensor>,
): AfterRun {
  const n = Object.values(feeds)[0]?.dims[0] ?? 0;
  const rows = Array.from({ length: Math.min(n, MAX_SAMPLED_ROWS) }, (_, r) => r);
  const ins = inputSummaries(m.processing!, feeds, rows);
  return (out) => {
    const all: RowsOf[] = [...ins, ...outputSummaries(out, rows)];
    void drift
      .forChunk(m.name, m.version)
      .then(async (d) => {
        if (d.share <= 0) return;
        d.add(all);
        await d.flush();
      })
      .catch(() => {});
  };
}

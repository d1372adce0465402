// Drift sampling of batch rows, inside an engine thread: of each run's rows a share is drawn and
// their input values copied out (never whole runs); the worker's main thread counts them into the
// version's drift window (core/drift/), as the producer does for online requests.
import type { RawTensor } from '../../core/tensors.ts';
import type { RunFeeds } from './run-feeds.ts';

/** Rows sampled from one segment or row group: per input, the sampled rows' values, row-major, in `dims`. */
export interface SampledRows {
  rows: number;
  inputs: { name: string; dims: number[]; data: number[] | string[] }[];
}

/** Most rows one segment gives drift, whatever the share: bounds the message back to the main thread. */
export const MAX_SAMPLED_ROWS = 1000;

/** Rows drawn with probability `share`; their values are copied at once, kept until `take()`. */
export class RowSampler {
  private byName = new Map<string, { dims: number[]; data: (number | string)[] }>();
  private rows = 0;

  constructor(
    private readonly share: number,
    private readonly random: () => number = Math.random,
    private readonly maxRows = MAX_SAMPLED_ROWS,
  ) {}

  /** `run` that also draws rows of what it scores (rows of a run that fails are never drawn). */
  wrap(run: RunFeeds): RunFeeds {
    return async (feeds, refs) => {
      const result = await run(feeds, refs);
      const n = refs?.length ?? 0;
      for (let r = 0; r < n && this.rows < Math.min(this.maxRows, MAX_SAMPLED_ROWS); r++) if (this.random() < this.share) this.copy(feeds, r);
      return result;
    };
  }

  private copy(feeds: Record<string, RawTensor>, r: number) {
    for (const [name, t] of Object.entries(feeds)) {
      const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
      let acc = this.byName.get(name);
      if (!acc) this.byName.set(name, (acc = { dims: t.dims.slice(1), data: [] }));
      // Rows of another shape (open dimensions): such an input is never profiled, its values are not kept.
      if (acc.dims.length !== t.dims.length - 1 || acc.dims.some((d, i) => d !== t.dims[i + 1])) {
        acc.dims = [-1];
        continue;
      }
      const data = t.data as ArrayLike<unknown>;
      for (let k = 0; k < per; k++) {
        const v = data[r * per + k];
        acc.data.push(typeof v === 'bigint' ? Number(v) : typeof v === 'string' ? v : Number(v));
      }
    }
    this.rows++;
  }

  /** The sampled rows' values, per input, or undefined when none was drawn. */
  take(): SampledRows | undefined {
    if (!this.rows) return undefined;
    const rows = this.rows;
    const out = {
      rows,
      inputs: [...this.byName.entries()]
        .filter(([, a]) => a.dims[0] !== -1)
        .map(([name, a]) => ({ name, dims: [rows, ...a.dims], data: a.data as number[] | string[] })),
    };
    this.byName = new Map();
    this.rows = 0;
    return out;
  }
}

// Progress of a batch while `modelq batch submit --wait` follows it: a cli-progress bar on a
// terminal, plain lines (at most one a second) when the stream is a pipe or a file, so logs stay
// readable. Rows per second and the ETA come from a sliding window over the last samples.
import cliProgress from 'cli-progress';
import type { BatchView } from '../core/batches.ts';

/** Rows scored so far, counting rows of chunks still in flight (the server reports those in `progress`). */
export function rowsDone(v: BatchView): number {
  const c = v.requestCounts;
  // An upload still arriving has no total yet (null): the rows scored so far.
  if (c.total === null) return c.completed + c.failed;
  return Math.min(c.total, Math.max(c.completed + c.failed, Math.round(v.progress * c.total)));
}

/** Rows per second over the last `windowMs` (default 10 s): reacts to a slowdown, yet smooths the jumps of chunk-sized updates. */
export class RateMeter {
  private samples: { t: number; rows: number }[] = [];
  constructor(private readonly windowMs = 10_000) {}

  add(t: number, rows: number): void {
    this.samples.push({ t, rows });
    // Keep one sample older than the window so the rate spans the whole window.
    while (this.samples.length > 2 && this.samples[1]!.t <= t - this.windowMs) this.samples.shift();
  }

  /** Rows per second, or undefined before there are two samples at least 200 ms apart. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t - first.t < 200) return undefined;
    return ((last.rows - first.rows) * 1000) / (last.t - first.t);
  }
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);
const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

interface Figures {
  done: string;
  total: string;
  rate: string;
  eta: string;
  status: string;
  failed: string;
  percentage: string;
}

function figures(v: BatchView, meter: RateMeter): Figures {
  const done = rowsDone(v);
  const total = v.requestCounts.total;
  const rate = meter.rate();
  const left = total === null ? null : total - done;
  const eta = left === null ? '-' : left === 0 ? '0s' : rate && rate > 0 ? formatDuration(left / rate) : '-';
  return {
    done: int.format(done),
    total: total === null ? '?' : int.format(total),
    rate: rate === undefined ? '-' : int.format(rate),
    eta,
    status: v.status,
    failed: v.requestCounts.failed ? ` | ${int.format(v.requestCounts.failed)} failed` : '',
    percentage: String(Math.floor((total ? done / total : 0) * 100)),
  };
}

export interface ProgressDisplay {
  update(v: BatchView): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Where progress goes (default process.stderr: stdout keeps the id and the result, for scripts). */
  stream?: NodeJS.WriteStream;
  /** Bar or plain lines; default: a bar when the stream is a terminal. */
  tty?: boolean;
  /** Clock, for tests (default Date.now). */
  now?: () => number;
  /** Least time between plain lines (default 1000 ms). */
  lineIntervalMs?: number;
}

export function createProgress(o: ProgressOptions = {}): ProgressDisplay {
  const stream = o.stream ?? process.stderr;
  const tty = o.tty ?? Boolean(stream.isTTY);
  return tty ? new BarDisplay(stream, o.now ?? Date.now) : new LineDisplay(stream, o.now ?? Date.now, o.lineIntervalMs ?? 1000);
}

class BarDisplay implements ProgressDisplay {
  private readonly meter = new RateMeter();
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  constructor(
    stream: NodeJS.WriteStream,
    private readonly now: () => number,
  ) {
    this.bar = new cliProgress.SingleBar(
      {
        stream,
        // Fits 80 columns with a million-row batch; the status shows while queued, finalizing or
        // cancelling (the final one is printed on the next line).
        format: '{bar} {percentage}% {done}/{totals} rows | {rate} rows/s | ETA {etaText}{state}{failed}',
        barsize: Math.max(10, Math.min(30, (stream.columns || 80) - 60)),
        hideCursor: true,
        // We own SIGINT (to say the batch goes on); stop() restores the cursor.
        gracefulExit: false,
        linewrap: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(v: BatchView): void {
    this.meter.add(this.now(), rowsDone(v));
    const f = figures(v, this.meter);
    // {total}, {eta} and {percentage} are cli-progress's own tokens; ours are computed from the server's counts.
    const payload = {
      done: f.done,
      totals: f.total,
      rate: f.rate,
      etaText: f.eta,
      state: v.status === 'running' || FINAL.has(v.status) ? '' : ` | ${v.status}`,
      failed: f.failed,
    };
    const total = Math.max(1, v.requestCounts.total ?? rowsDone(v));
    if (!this.started) {
      this.bar.start(total, rowsDone(v), payload);
      this.started = true;
    } else {
      this.bar.setTotal(total);
      this.bar.update(rowsDone(v), payload);
    }
  }

  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}

class LineDisplay implements ProgressDisplay {
  private readonly meter = new RateMeter();
  private last = -Infinity;
  private lastText = '';

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly now: () => number,
    private readonly intervalMs: number,
  ) {}

  update(v: BatchView): void {
    const t = this.now();
    this.meter.add(t, rowsDone(v));
    if (t - this.last < this.intervalMs) return;
    const f = figures(v, this.meter);
    const text = `${v.id} ${f.status} ${f.percentage}% ${f.done}/${f.total} rows, ${f.rate} rows/s, ETA ${f.eta}${f.failed.replace(' |', ',')}`;
    // Unchanged lines are repeated only every 10 s, as a sign of life while a batch waits for a worker.
    if (text === this.lastText && t - this.last < 10_000) return;
    this.stream.write(`${text}\n`);
    this.last = t;
    this.lastText = text;
  }

  stop(): void {}
}

// Stop signals as a terminal and `npm start` send them. Ctrl-C sends SIGINT to every process of the
// terminal's foreground group (npm, the launcher and its children), and npm and the launcher forward
// what they get to their own children: one Ctrl-C reaches a process as two or three signals within
// moments. The first starts the graceful stop; the ones that arrive with it belong to the same stop;
// a signal after that (a second Ctrl-C) stops at once.

/** Signals that arrive within this long after the first belong to the same stop. */
export const SAME_STOP_MS = 1000;

export type StopKind = 'stop' | 'same' | 'now';

/** Classifies each stop signal: the first is `stop`, its echoes `same`, a later one `now`. */
export class StopSignals {
  private first: number | undefined;

  constructor(
    private readonly sameStopMs = SAME_STOP_MS,
    private readonly clock: () => number = Date.now,
  ) {}

  next(): StopKind {
    const t = this.clock();
    if (this.first === undefined) {
      this.first = t;
      return 'stop';
    }
    return t - this.first < this.sameStopMs ? 'same' : 'now';
  }
}

export interface StopHandlers {
  /** The graceful stop (called once). */
  stop(signal: NodeJS.Signals): void;
  /** A second request to stop, after the first: exit at once. */
  now(signal: NodeJS.Signals): void;
}

/** Installs the handlers for `signals` (default SIGINT and SIGTERM). */
export function onStopSignals(handlers: StopHandlers, signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): StopSignals {
  const tracker = new StopSignals();
  for (const sig of signals) {
    process.on(sig, () => {
      const kind = tracker.next();
      if (kind === 'stop') handlers.stop(sig);
      else if (kind === 'now') handlers.now(sig);
    });
  }
  return tracker;
}

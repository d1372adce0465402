// A job's time limit where the job's own code runs (on the worker's main thread, between its
// steps): `check()` between steps and `race()` around a step that waits fail the job once its limit
// has passed, with an error naming the limit. Not retryable: the same job would take as long again.
// Engine work inside the job has its own budget (engine/budget.ts); a child process its own (training/child/sandbox.ts).
import { AppError } from '../core/errors.ts';

export class JobDeadline {
  private readonly end: number;

  constructor(
    readonly limitMs: number,
    /** The setting that gave the limit, e.g. `MODELQ_COMPRESS_TIMEOUT_S`. */
    readonly limit: string,
    /** What is limited, for the message: "the compression". */
    readonly what: string,
    /** How the limit is shown: as set (seconds for *_S keys). */
    readonly shown = `${limitMs} ms`,
  ) {
    this.end = performance.now() + limitMs;
  }

  error(): AppError {
    return new AppError('timeout', `${this.what} exceeded its time limit of ${this.shown} (${this.limit}) and was stopped`);
  }

  get passed(): boolean {
    return performance.now() > this.end;
  }

  check(): void {
    if (this.passed) throw this.error();
  }

  /** `p`, or the limit's error once the limit passes first (the step's work is left to end on its own). */
  async race<T>(p: Promise<T>): Promise<T> {
    p.catch(() => {}); // when the limit wins, the step's own end no longer matters
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.error()), Math.max(0, this.end - performance.now()));
    });
    try {
      return await Promise.race([p, limit]);
    } finally {
      clearTimeout(timer);
    }
  }
}

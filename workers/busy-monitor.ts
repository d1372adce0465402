// How long the worker's main thread stays busy in one stretch: the most event-loop time not spent
// waiting for I/O (eventLoopUtilization's `active`) between two samples taken every few ms. Unlike
// event-loop delay it does not grow when a loaded machine leaves an idle thread unscheduled, so it
// measures the worker's own blocking (say, onnxruntime run on the main thread), not the OS's.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

export class BusyMonitor {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private max = 0;
  private readonly timer: NodeJS.Timeout;

  /** `sampleMs`: how often utilization is sampled (default 10); a busy stretch shorter than that reads as at most about that long. */
  constructor(sampleMs = 10) {
    this.timer = setInterval(() => this.sample(), sampleMs);
    this.timer.unref();
  }

  private sample() {
    const now = performance.eventLoopUtilization();
    this.max = Math.max(this.max, performance.eventLoopUtilization(now, this.last).active);
    this.last = now;
  }

  /** The longest busy stretch (ms) since the previous call; starts the next window. */
  takeMax(): number {
    this.sample();
    const m = this.max;
    this.max = 0;
    return m;
  }

  stop() {
    clearInterval(this.timer);
  }
}

import { describe, expect, it } from 'vitest';
import { SAME_STOP_MS, StopSignals } from '../../../core/signals.ts';

describe('StopSignals', () => {
  it("counts a Ctrl-C's echoes (the terminal's SIGINT, the launcher's SIGTERM) as one stop, and a later signal as a second request", () => {
    let t = 1000;
    const s = new StopSignals(SAME_STOP_MS, () => t);
    expect(s.next()).toBe('stop'); // the terminal's SIGINT
    t += 5;
    expect(s.next()).toBe('same'); // npm's forwarded SIGINT
    t += 20;
    expect(s.next()).toBe('same'); // the launcher's SIGTERM
    t += SAME_STOP_MS;
    expect(s.next()).toBe('now'); // a second Ctrl-C
  });
});

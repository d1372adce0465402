import { describe, expect, it } from 'vitest';
import { SAME_STOP_MS, StopSignals } from '../../../core/signals.ts';

describe('StopSignals', () => {
  it("counts a child's Ctrl-C echoes (the terminal's SIGINT, the launcher's SIGTERM however late) as one stop; a second SIGINT as a second request", () => {
    let t = 1000;
    const s = new StopSignals(SAME_STOP_MS, () => t);
    expect(s.next('SIGINT')).toBe('stop'); // the terminal's SIGINT
    t += 3 * SAME_STOP_MS;
    expect(s.next('SIGTERM')).toBe('same'); // the launcher's SIGTERM, late on a busy machine
    expect(s.next('SIGINT')).toBe('now'); // a second Ctrl-C
  });

  it("counts the launcher's echo from npm (the same signal soon after) as the same stop, a later repeat as a second request", () => {
    let t = 1000;
    const s = new StopSignals(SAME_STOP_MS, () => t);
    expect(s.next('SIGINT')).toBe('stop');
    t += 20;
    expect(s.next('SIGINT')).toBe('same'); // npm's forwarded SIGINT
    t += SAME_STOP_MS;
    expect(s.next('SIGINT')).toBe('now');
  });

  it('a second SIGTERM (kill, a supervisor) later than the first stops at once', () => {
    let t = 0;
    const s = new StopSignals(SAME_STOP_MS, () => t);
    expect(s.next('SIGTERM')).toBe('stop');
    t += SAME_STOP_MS;
    expect(s.next('SIGTERM')).toBe('now');
  });
});

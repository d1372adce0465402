// The payload-log partition reading that erasing a log range relies on, and the calibration figures
// of model cards, on hand-made inputs.
import { describe, expect, it } from 'vitest';
import { logObjectHour, logPartitionHour } from '../../../core/erasure.ts';
import { calibrationMetrics } from '../../../core/model-card.ts';

describe('log partitions', () => {
  it('reads an hour partition in the forms the log writer may use, and refuses others', () => {
    const t = Date.UTC(2026, 11, 7, 13);
    for (const s of ['2026-12-07T13', '2026-12-07T13:00:00Z', 'hour=2026-12-07T13', '2026120713', '2026-12-07 13']) expect(logPartitionHour(s), s).toBe(t);
    for (const s of ['', 'part-0.parquet', '2026-12-07', 'hour=', '20261207'] as const) expect(logPartitionHour(s), s).toBeNull();
  });

  it("takes an object's hour only under logs/<tenant>/<model>/<version>/<hour>/ and, when asked, of that model", () => {
    const key = 'logs/acme/iris/2/2026-12-07T13/part-0.parquet';
    expect(logObjectHour(key)).toBe(Date.UTC(2026, 11, 7, 13));
    expect(logObjectHour(key, 'iris')).toBe(Date.UTC(2026, 11, 7, 13));
    expect(logObjectHour(key, 'iris2')).toBeNull();
    expect(logObjectHour('logs/acme/iris/2/2026-12-07T13')).toBeNull();
    expect(logObjectHour('datasets/acme/iris/2/2026-12-07T13/x')).toBeNull();
  });
});

describe('calibration', () => {
  it('bins confidences, and computes the expected and maximum calibration error', () => {
    // Bin 0.9: two rows at 0.95, one right (accuracy 0.5, gap 0.45); bin 0.6: two at 0.6, both right (gap 0.4).
    const c = calibrationMetrics({ truth: [0, 1, 2, 2], predicted: [0, 0, 2, 2], confidence: [0.95, 0.95, 0.6, 0.6] });
    expect(c.rows).toBe(4);
    expect(c.bins).toHaveLength(10);
    expect(c.bins[9]).toMatchObject({ rows: 2, accuracy: 0.5 });
    expect(c.bins[9]!.confidence).toBeCloseTo(0.95, 12);
    expect(c.bins[6]).toMatchObject({ rows: 2, accuracy: 1 });
    expect(c.bins[0]).toEqual({ from: 0, to: 0.1, rows: 0, confidence: null, accuracy: null });
    expect(c.ece).toBeCloseTo(0.5 * 0.45 + 0.5 * 0.4, 12);
    expect(c.mce).toBeCloseTo(0.45, 12);
    // A confidence of exactly 1 falls in the last bin.
    expect(calibrationMetrics({ truth: [1], predicted: [1], confidence: [1] }).bins[9]!.rows).toBe(1);
  });
});

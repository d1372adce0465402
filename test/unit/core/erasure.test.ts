// The calibration figures of model cards, on hand-made inputs.
import { describe, expect, it } from 'vitest';
import { calibrationMetrics } from '../../../core/model-card.ts';

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

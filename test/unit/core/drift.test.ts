// Drift statistics: bins from quantiles, PSI and Jensen-Shannon distance against hand-computed values, levels.
import { describe, expect, it } from 'vitest';
import { binOf, buildProfile, countRows, driftReport, jsDistance, levelOf, modelSlots, psi } from '../../../core/drift/index.ts';

describe('drift statistics', () => {
  it('bins by cut points: edges[i-1] <= v < edges[i]', () => {
    expect([-1, 0, 0.5, 1, 2, 5].map((v) => binOf([0, 1, 2], v))).toEqual([0, 1, 1, 2, 3, 3]);
  });

  it('builds decile bins with equal shares, and category shares with the rest as "other"', () => {
    const slots = modelSlots([
      { name: 'x', datatype: 'FP32', shape: [-1, 1] },
      { name: 'c', datatype: 'BYTES', shape: [-1, 1] },
    ]);
    const p = buildProfile(slots, [Array.from({ length: 1000 }, (_, i) => i), Array.from({ length: 1000 }, (_, i) => (i % 4 === 0 ? 'a' : 'b'))]);
    const [num, cat] = p.features;
    expect(num!.kind === 'numeric' && num!.edges).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900]);
    expect(num!.expected.every((e) => Math.abs(e - 0.1) < 1e-12)).toBe(true);
    expect(cat!.kind === 'categorical' && cat!.categories).toEqual(['b', 'a']);
    expect(cat!.expected).toEqual([0.75, 0.25, 0]);
  });

  it('computes PSI and the Jensen-Shannon distance', () => {
    expect(psi([0.5, 0.5], [0.5, 0.5])).toBe(0);
    expect(psi([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.25 * Math.log(0.75 / 0.5) - 0.25 * Math.log(0.25 / 0.5), 12);
    expect(jsDistance([1, 0], [0, 1])).toBeCloseTo(1, 12);
    expect(jsDistance([0.3, 0.7], [0.3, 0.7])).toBe(0);
  });

  it("levels: ok < warn <= ... < alert, and the worst feature is the report's level", () => {
    const t = { warn: 0.1, alert: 0.25 };
    expect([0.05, 0.1, 0.2, 0.25, 3].map((s) => levelOf(s, t))).toEqual(['ok', 'warn', 'warn', 'alert', 'alert']);
    const slots = modelSlots([{ name: 'f', datatype: 'FP32', shape: [-1, 2] }]);
    const p = buildProfile(slots, [
      [0, 1, 2, 3],
      [0, 1, 2, 3],
    ]);
    // feature 0 sees the reference's spread, feature 1 only its top bin
    const counts = new Map<string, number>();
    p.features[0]!.expected.forEach((e, b) => counts.set(`0:${b}`, e * 100));
    counts.set(`1:${p.features[1]!.expected.length - 1}`, 100);
    const r = driftReport(p, counts, 100, t);
    expect(r.features.map((f) => [f.name, f.level])).toEqual([
      ['f[0]', 'ok'],
      ['f[1]', 'alert'],
    ]);
    expect(r.level).toBe('alert');
    expect(driftReport(p, new Map(), 0, t).level).toBe('no_data');
  });

  it('profiles a string feature of sentences as word frequencies (text), one of single words as categories', () => {
    const slots = modelSlots([
      { name: 'review', datatype: 'BYTES', shape: [-1] },
      { name: 'color', datatype: 'BYTES', shape: [-1, 1] },
    ]);
    const reviews = ['Good movie, good plot', 'bad movie', 'the plot was good'];
    const p = buildProfile(slots, [reviews, ['red', 'blue', 'red']]);
    const [text, cat] = p.features;
    expect(text!.kind).toBe('text');
    // 10 words: good x3, movie x2, plot x2, bad, the, was (ties in word order)
    expect(text!.kind === 'text' && text!.tokens).toEqual(['good', 'movie', 'plot', 'bad', 'the', 'was']);
    expect(text!.expected).toEqual([3, 2, 2, 1, 1, 1, 0].map((x) => x / 10));
    expect(cat!.kind).toBe('categorical');
    // a window: every word counted into its bin, unknown words as "other"
    const counts = new Map<string, number>();
    const rows = countRows(
      p,
      [
        { name: 'review', shape: [2], data: ['GOOD good zebra', 'plot'] },
        { name: 'color', shape: [2, 1], data: ['red', 'green'] },
      ],
      counts,
    );
    expect(rows).toBe(2);
    expect(Object.fromEntries(counts)).toEqual({ '0:0': 2, '0:6': 1, '0:2': 1, '1:0': 1, '1:2': 1 });
    const r = driftReport(p, counts, rows, { warn: 0.1, alert: 0.25 });
    expect(r.features[0]).toMatchObject({ kind: 'text', metric: 'js' });
  });
});

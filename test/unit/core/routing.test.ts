// Weighted aliases' routing function: shares follow the weights, a key always lands on one version,
// and growing a candidate's weight moves keys only onto the candidate.
import { describe, expect, it } from 'vitest';
import { aliasRouteSchema, hash32, pickWeighted, primaryOf } from '../../../core/routing.ts';

const shares = (weights: number[], key: (i: number) => string | undefined, n = 10_000) => {
  const counts = weights.map(() => 0);
  for (let i = 0; i < n; i++) counts[pickWeighted(weights, key(i), 'm')]!++;
  return counts.map((c) => (100 * c) / n);
};

describe('pickWeighted', () => {
  it('splits 10,000 keyed decisions 90/10 within 2 points', () => {
    const [a, b] = shares([90, 10], (i) => `user-${i}`);
    expect(Math.abs(a! - 90)).toBeLessThanOrEqual(2);
    expect(Math.abs(b! - 10)).toBeLessThanOrEqual(2);
  });

  it('splits 10,000 unkeyed (random) decisions 90/10 within 2 points', () => {
    const [a, b] = shares([90, 10], () => undefined);
    expect(Math.abs(a! - 90)).toBeLessThanOrEqual(2);
    expect(Math.abs(b! - 10)).toBeLessThanOrEqual(2);
  });

  it('follows four weights', () => {
    const s = shares([40, 30, 20, 10], (i) => `k${i}`);
    [40, 30, 20, 10].forEach((w, i) => expect(Math.abs(s[i]! - w)).toBeLessThanOrEqual(2));
  });

  it('gives one key one version, every time', () => {
    for (const key of ['alice', 'bob', 'req-17', '']) {
      const first = pickWeighted([50, 50], key || 'x', 'm');
      for (let i = 0; i < 100; i++) expect(pickWeighted([50, 50], key || 'x', 'm')).toBe(first);
    }
  });

  it('moves keys only onto the candidate as its weight grows', () => {
    for (let i = 0; i < 2000; i++) {
      const before = pickWeighted([90, 10], `u${i}`, 'm');
      if (before === 1) expect(pickWeighted([75, 25], `u${i}`, 'm')).toBe(1);
    }
  });

  it('never picks a version of weight 0', () => {
    for (let i = 0; i < 1000; i++) expect(pickWeighted([100, 0], `z${i}`, 'm')).toBe(0);
    for (let i = 0; i < 1000; i++) expect(pickWeighted([0, 100], `z${i}`, 'm')).toBe(1);
  });

  it('hashes close keys far apart', () => {
    expect(hash32('k1')).not.toBe(hash32('k2'));
    expect(Math.abs(hash32('k1') - hash32('k2'))).toBeGreaterThan(1 << 16);
  });
});

describe('aliasRouteSchema', () => {
  it('takes up to 4 versions whose weights add up to 100', () => {
    expect(
      aliasRouteSchema.safeParse({
        versions: [
          { version: 3, weight: 90 },
          { version: 4, weight: 10 },
        ],
      }).success,
    ).toBe(true);
    expect(
      aliasRouteSchema.safeParse({
        versions: [
          { version: 3, weight: 90 },
          { version: 4, weight: 20 },
        ],
      }).error?.issues[0]?.message,
    ).toMatch(/add up to 100/);
    const five = [1, 2, 3, 4, 5].map((version) => ({ version, weight: 20 }));
    expect(aliasRouteSchema.safeParse({ versions: five }).error?.issues[0]?.message).toMatch(/at most 4/);
    expect(
      aliasRouteSchema.safeParse({
        versions: [
          { version: 3, weight: 50 },
          { version: 3, weight: 50 },
        ],
      }).success,
    ).toBe(false);
  });

  it('names the version with most weight as primary', () => {
    expect(
      primaryOf({
        versions: [
          { version: 3, weight: 10 },
          { version: 4, weight: 90 },
        ],
      }),
    ).toBe(4);
    expect(
      primaryOf({
        versions: [
          { version: 3, weight: 50 },
          { version: 4, weight: 50 },
        ],
      }),
    ).toBe(3);
  });
});

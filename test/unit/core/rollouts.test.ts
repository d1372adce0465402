// The rollout's decision from a step's figures: errors roll back as soon as they make the rate fail,
// other gates wait for the minimum of requests, advancing needs every gate and the minimum time.
import { describe, expect, it } from 'vitest';
import { decide, rolloutBodySchema, stepFigures, weightsAt, type Rollout } from '../../../core/rollouts.ts';
import { bucketOf, EMPTY_FIGURES, type Figures } from '../../../core/version-figures.ts';

const rollout = (over: Partial<Rollout> = {}): Rollout => ({
  ...rolloutBodySchema.parse({ alias: 'prod', candidate: 2, steps: [10, 50, 100], minRequests: 100, minDurationMs: 1000 }),
  id: 'ro_0000000000000000',
  name: 'm',
  baseline: 1,
  status: 'running',
  step: 0,
  stepStartedAt: 0,
  since: { baseline: EMPTY_FIGURES, candidate: EMPTY_FIGURES },
  evaluations: 0,
  evaluationsSeeingErrors: 0,
  createdAt: 0,
  updatedAt: 0,
  by: { tenant: 'default', keyId: 'open' },
  rev: 1,
  ...over,
});
const figs = (requests: number, errors: number, ms: number): Figures => ({ requests, errors, latency: { [bucketOf(ms)]: requests - errors } });

describe('decide', () => {
  it('rolls back on errors before the minimum of requests once the rate cannot hold', () => {
    const r = rollout();
    const d = decide(r, stepFigures(r, { baseline: figs(1000, 0, 1), candidate: figs(10, 2, 1) }, 5000));
    expect(d).toMatchObject({ action: 'rollback', gate: 'errorRate' });
    expect(decide(r, stepFigures(r, { baseline: figs(1000, 0, 1), candidate: figs(10, 1, 1) }, 5000)).action).toBe('wait');
  });

  it('waits for the minimum of requests and time, then advances', () => {
    const r = rollout();
    expect(decide(r, stepFigures(r, { baseline: figs(900, 0, 1), candidate: figs(99, 0, 1) }, 5000)).action).toBe('wait');
    expect(decide(r, stepFigures(r, { baseline: figs(900, 0, 1), candidate: figs(100, 0, 1) }, 500)).action).toBe('wait');
    expect(decide(r, stepFigures(r, { baseline: figs(900, 0, 1), candidate: figs(100, 0, 1) }, 1000)).action).toBe('advance');
  });

  it('counts only the step: figures since its start', () => {
    const r = rollout({ since: { baseline: figs(500, 0, 1), candidate: figs(500, 50, 1) } });
    expect(decide(r, stepFigures(r, { baseline: figs(1400, 0, 1), candidate: figs(600, 50, 1) }, 2000)).action).toBe('advance');
  });

  it('rolls back on the p99 latency ratio', () => {
    const r = rollout({ gates: { maxErrorRate: 0.01, maxLatencyRatio: 1.5 } });
    const d = decide(r, stepFigures(r, { baseline: figs(900, 0, 2), candidate: figs(100, 0, 10) }, 2000));
    expect(d).toMatchObject({ action: 'rollback', gate: 'latencyRatio' });
    expect(d.figures.latencyRatio).toBeGreaterThan(3);
  });

  it('waits for shadow comparisons, then rolls back on disagreement', () => {
    const r = rollout({ gates: { maxErrorRate: 0.01, minAgreement: 0.9 } });
    const now = { baseline: figs(900, 0, 1), candidate: figs(100, 0, 1) };
    expect(decide(r, stepFigures(r, { ...now, comparisons: { compared: 10, agreed: 10 } }, 2000)).action).toBe('wait');
    expect(decide(r, stepFigures(r, { ...now, comparisons: { compared: 100, agreed: 80 } }, 2000))).toMatchObject({ action: 'rollback', gate: 'agreement' });
    expect(decide(r, stepFigures(r, { ...now, comparisons: { compared: 100, agreed: 95 } }, 2000)).action).toBe('advance');
  });

  it('rolls back on drift at the gate level', () => {
    const r = rollout({ gates: { maxErrorRate: 0.01, maxDriftLevel: 'alert' } });
    const now = { baseline: figs(900, 0, 1), candidate: figs(100, 0, 1) };
    expect(decide(r, stepFigures(r, { ...now, drift: 'warn' }, 2000)).action).toBe('advance');
    expect(decide(r, stepFigures(r, { ...now, drift: 'alert' }, 2000))).toMatchObject({ action: 'rollback', gate: 'drift' });
  });
});

describe('rollout steps', () => {
  it('put the candidate last, with the step weight', () => {
    expect(weightsAt(rollout(), 1)).toEqual([
      { version: 1, weight: 50 },
      { version: 2, weight: 50 },
    ]);
  });
  it('must grow and end at 100', () => {
    expect(rolloutBodySchema.safeParse({ alias: 'a', candidate: 2, steps: [50, 25, 100] }).success).toBe(false);
    expect(rolloutBodySchema.safeParse({ alias: 'a', candidate: 2, steps: [5, 25] }).success).toBe(false);
    expect(rolloutBodySchema.parse({ alias: 'a', candidate: 2 }).steps).toEqual([5, 25, 50, 100]);
  });
});

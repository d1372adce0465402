// A /metrics scrape reads each version's reference profile through the process's one profile cache
// (core/drift/profile-cache.ts): two scrapes, a second one that recomputes the drift from a changed
// window, read the reference from the store once, and the /drift route reads it no more.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildProfile, DriftWindows, modelSlots, referenceKey } from '../../core/drift/index.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 0 });
}, 60_000);
afterAll(async () => {
  vi.useRealTimers();
  await p?.stop();
});

/** The drift score gauge of feature `x` of watched@1 in a /metrics answer. */
const scoreOf = (text: string) => {
  const m = /^modelq_drift_score\{[^}]*model="watched"[^}]*feature="x"[^}]*\} (\S+)$/m.exec(text);
  return m ? Number(m[1]) : null;
};

describe('drift reference profiles behind /metrics', () => {
  it('are read from the store once across two scrapes', async () => {
    const inputs = [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 1] }];
    const { record } = await p.deps.registry.createVersion('watched', { sha256: 'a'.repeat(64), bytes: 1, inputs, outputs: inputs });
    const slots = modelSlots(inputs);
    const text = JSON.stringify(buildProfile(slots, [Array.from({ length: 1000 }, (_, i) => i)]));
    const key = referenceKey(createHash('sha256').update(text).digest('hex'));
    await p.deps.store.put(key, text);
    await p.deps.registry.setExplainArtifact('watched', record.version, 'reference', { key, rows: 1000, features: 1 });

    const windows = new DriftWindows(p.redis, p.deps.prefix, p.cfg.MODELQ_DRIFT_WINDOW);
    // A window like the reference (bins 0-9 evenly): no drift.
    await windows.add('watched', 1, 100, new Map(Array.from({ length: 10 }, (_, b) => [`0:${b}`, 10] as [string, number])));

    const reads = vi.spyOn(p.deps.store, 'get');
    const referenceReads = () => reads.mock.calls.filter(([k]) => k === key).length;
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });

    const first = await (await fetch(`${p.url}/metrics`)).text();
    expect(scoreOf(first), first.slice(0, 2000)).toBe(0);
    expect(referenceReads()).toBe(1);

    // Every row now in the top bin: the second scrape (past the one-second memo of a scrape) computes a new score.
    await windows.add('watched', 1, 1000, new Map([['0:9', 1000]]));
    vi.setSystemTime(Date.now() + 5_000);
    const second = await (await fetch(`${p.url}/metrics`)).text();
    expect(scoreOf(second)).toBeGreaterThan(0.25);
    expect(referenceReads()).toBe(1);

    // The /drift route shares the cache too.
    const report = (await (await fetch(`${p.url}/v1/models/watched/versions/1/drift`)).json()) as { level: string; referenceRows: number };
    expect(report).toMatchObject({ level: 'alert', referenceRows: 1000 });
    expect(referenceReads()).toBe(1);
  });
});

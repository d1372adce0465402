// The batcher with a stub run function: how requests are grouped, split back, and isolated.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../../../core/errors.ts';
import type { RawTensor } from '../../../../core/tensors.ts';
import { Batcher, type RunFn } from '../../../../workers/engine/batcher.ts';

const model = { sha256: 'a'.repeat(64), path: '/dev/null' };
const row = (v: number, width = 2): Record<string, RawTensor> => ({ x: { type: 'float32', dims: [1, width], data: new Float32Array(width).fill(v) } });

/** A stub model: y = 2x, recording the batch sizes it was called with. */
function stub(opts: { delayMs?: number; failOn?: number } = {}) {
  const calls: number[] = [];
  const run: RunFn = async (_m, feeds) => {
    const x = feeds.x!;
    calls.push(x.dims[0]!);
    const data = x.data as Float32Array;
    if (opts.failOn !== undefined && data.includes(opts.failOn)) throw new AppError('bad_request', `bad value ${opts.failOn}`);
    if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    return { y: { type: 'float32', dims: [...x.dims], data: data.map((v) => v * 2) } };
  };
  return { run, calls };
}

const settings = { maxBatch: 64, maxDelayMs: 2, instances: 1 };

describe('Batcher', () => {
  it('merges requests that arrive together into one run and splits the answers', async () => {
    const s = stub();
    const b = new Batcher(s.run);
    const out = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(model, row(i), settings, true)));
    expect(s.calls).toEqual([10]);
    out.forEach((o, i) => {
      expect(o.y!.dims).toEqual([1, 2]);
      expect(Array.from(o.y!.data as Float32Array)).toEqual([2 * i, 2 * i]);
    });
    expect(b.stats.batchSizes).toEqual({ 16: 1 });
  });

  it('never exceeds maxBatch rows, and a larger request runs alone', async () => {
    const s = stub();
    const b = new Batcher(s.run);
    await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(model, row(i), { ...settings, maxBatch: 4, instances: 4 }, true)));
    expect(s.calls).toEqual([4, 4, 2]);
    const big: Record<string, RawTensor> = { x: { type: 'float32', dims: [9, 2], data: new Float32Array(18) } };
    await b.submit(model, big, { ...settings, maxBatch: 4 }, true);
    expect(s.calls.at(-1)).toBe(9);
  });

  it('grows the next batch while every instance is busy', async () => {
    const s = stub({ delayMs: 30 });
    const b = new Batcher(s.run);
    const first = b.submit(model, row(0), { ...settings, maxDelayMs: 0 }, true);
    await new Promise((r) => setTimeout(r, 5));
    const rest = Array.from({ length: 7 }, (_, i) => b.submit(model, row(i + 1), { ...settings, maxDelayMs: 0 }, true));
    await Promise.all([first, ...rest]);
    expect(s.calls).toEqual([1, 7]);
  });

  it('runs a lone request on an idle model at once, without waiting maxDelayMs', async () => {
    const s = stub();
    const b = new Batcher(s.run);
    const t0 = performance.now();
    await b.submit(model, row(1), { ...settings, maxDelayMs: 1000 }, true);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(s.calls).toEqual([1]);
  });

  it('with traffic in the last maxDelayMs, waits for company while a run is in flight', async () => {
    const s = stub({ delayMs: 5 });
    const b = new Batcher(s.run);
    const slow = { ...settings, maxDelayMs: 60, instances: 2 };
    const first = b.submit(model, row(0), slow, true); // idle: runs at once
    await new Promise((r) => setImmediate(r));
    const next = b.submit(model, row(1), slow, true); // recent traffic, one run busy: waits
    await first;
    const late = b.submit(model, row(2), slow, true);
    await Promise.all([next, late]);
    expect(s.calls).toEqual([1, 2]);
  });

  it('never mixes shapes beyond the batch dimension', async () => {
    const s = stub();
    const b = new Batcher(s.run);
    await Promise.all([b.submit(model, row(1, 2), settings, true), b.submit(model, row(2, 3), settings, true), b.submit(model, row(3, 2), settings, true)]);
    expect(s.calls.sort()).toEqual([1, 2]);
  });

  it('concatenates string tensors ([N] and [N, 1]) and splits string and numeric answers back', async () => {
    const calls: number[][] = [];
    const run: RunFn = async (_m, feeds) => {
      const t = feeds.text!;
      calls.push(t.dims);
      const words = t.data as string[];
      return {
        label: { type: 'string', dims: [t.dims[0]!], data: words.map((w) => w.toUpperCase()) },
        len: { type: 'float32', dims: [t.dims[0]!, 1], data: Float32Array.from(words, (w) => w.length) },
      };
    };
    const b = new Batcher(run);
    const texts = (ws: string[], rank = 1): Record<string, RawTensor> => ({
      text: { type: 'string', dims: rank === 2 ? [ws.length, 1] : [ws.length], data: ws },
    });
    const groups = [['héllo', ''], ['東京'], ['a', 'b 🍕', 'c']];
    const out = await Promise.all(groups.map((ws) => b.submit(model, texts(ws), settings, true)));
    expect(calls).toEqual([[6]]);
    out.forEach((o, i) => {
      expect(o.label).toEqual({ type: 'string', dims: [groups[i]!.length], data: groups[i]!.map((w) => w.toUpperCase()) });
      expect(Array.from(o.len!.data as Float32Array)).toEqual(groups[i]!.map((w) => w.length));
    });
    const out2 = await Promise.all(groups.map((ws) => b.submit(model, texts(ws, 2), settings, true)));
    expect(calls.at(-1)).toEqual([6, 1]);
    expect(out2.map((o) => o.label!.data)).toEqual(groups.map((ws) => ws.map((w) => w.toUpperCase())));
  });

  it('runs requests of a model without a dynamic batch dimension one by one', async () => {
    const s = stub();
    const b = new Batcher(s.run);
    await Promise.all(Array.from({ length: 3 }, (_, i) => b.submit(model, row(i), { ...settings, instances: 3 }, false)));
    expect(s.calls).toEqual([1, 1, 1]);
  });

  it('fails a bad request alone when the merged run fails', async () => {
    const s = stub({ failOn: 13 });
    const b = new Batcher(s.run);
    const results = await Promise.allSettled([1, 13, 2].map((v) => b.submit(model, row(v), settings, true)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('bad value 13');
  });

  it('does not compute a request whose client went away before it started', async () => {
    const s = stub({ delayMs: 20 });
    const b = new Batcher(s.run);
    const busy = b.submit(model, row(1), { ...settings, maxDelayMs: 0 }, true);
    const gone = new AbortController();
    const cancelled = b.submit(model, row(2), { ...settings, maxDelayMs: 0 }, true, gone.signal);
    gone.abort();
    await busy;
    await expect(cancelled).rejects.toMatchObject({ code: 'timeout' });
    expect(s.calls).toEqual([1]);
  });
});

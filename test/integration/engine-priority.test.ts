// Low-priority engine runs (shadow mirrors, BatchSettings.low): with a backlog of them and primary
// requests arriving, the primaries are served first and the mirrors fill the gaps afterwards. The
// order of the answers is what is checked (one engine thread, real onnxruntime), never their times.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../workers/engine/engine.ts';
import { directRun, rows, SLOW_FEATURES, slowMlp, tinyMlp, tmpDir } from '../fixtures/models.ts';

const settings = { maxBatch: 1, maxDelayMs: 0, instances: 1 };

describe('engine priority', () => {
  it('serves primary requests ahead of a backlog of low-priority ones, and still answers every low one right', async () => {
    const dir = tmpDir('engine-priority');
    const primary = { sha256: 'a'.repeat(64), path: path.join(dir, 'primary.onnx'), label: 'm@1' };
    const shadow = { sha256: 'b'.repeat(64), path: path.join(dir, 'shadow.onnx'), label: 'm@2' };
    fs.writeFileSync(primary.path, slowMlp());
    fs.writeFileSync(shadow.path, tinyMlp(2));
    const engine = new Engine({ threads: 1 });
    await engine.start();
    try {
      await Promise.all([engine.warm(primary), engine.warm(shadow)]);
      const x = rows(1, SLOW_FEATURES, 3);
      const t = new Float32Array([1, 2, 3, 4]);
      const order: string[] = [];
      const n = 8;
      // The backlog of mirrors first, then the primaries, all before any run ends.
      const lows = Array.from({ length: n }, (_, i) =>
        engine.infer(shadow, { input: { type: 'float32', dims: [1, 4], data: t.slice() } }, { ...settings, low: true }, true).then((o) => {
          order.push(`s${i}`);
          return Array.from(o.output!.data as Float32Array);
        }),
      );
      const primaries = Array.from({ length: n }, (_, i) =>
        engine.infer(primary, { input: { type: 'float32', dims: [1, SLOW_FEATURES], data: x.slice() } }, settings, true).then(() => order.push(`p${i}`)),
      );
      await Promise.all(primaries);
      const shadowAnswers = await Promise.all(lows);
      // At most the one mirror that found the thread idle before any primary came ran ahead.
      const lastPrimary = order.lastIndexOf(`p${n - 1}`);
      const mirrorsAhead = order.slice(0, lastPrimary).filter((o) => o.startsWith('s')).length;
      expect(mirrorsAhead).toBeLessThanOrEqual(1);
      expect(order.filter((o) => o.startsWith('s'))).toHaveLength(n);
      const want = Array.from((await directRun(tinyMlp(2), { input: { data: t, dims: [1, 4] } })).output!);
      for (const a of shadowAnswers) expect(a).toEqual(want);
      expect(engine.lowStats.runs).toBe(n);
      expect(engine.lowStats.held).toBeGreaterThan(0);
    } finally {
      await engine.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

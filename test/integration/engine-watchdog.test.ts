// The engine's watchdog on a model that holds its thread in native code (a Loop of millions of
// turns): the run fails once past MODELQ_ENGINE_RUN_TIMEOUT_MS naming it, the thread is replaced,
// and another model's runs are answered meanwhile and afterwards.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Engine } from '../../workers/engine/engine.ts';
import { EngineFault } from '../../workers/engine/budget.ts';
import { directRun, tinyMlp, tmpDir } from '../fixtures/models.ts';
import { loopModel } from '../fixtures/loop-model.ts';

describe('engine watchdog', () => {
  it('replaces a thread whose run overruns its time budget; other runs go on', async () => {
    const dir = tmpDir('engine-watchdog');
    const loop = { sha256: 'a'.repeat(64), path: path.join(dir, 'loop.onnx'), label: 'loop@1' };
    const tiny = { sha256: 'b'.repeat(64), path: path.join(dir, 'tiny.onnx'), label: 'tiny@1' };
    fs.writeFileSync(loop.path, loopModel());
    fs.writeFileSync(tiny.path, tinyMlp());
    const engine = new Engine({ threads: 2, runTimeoutMs: 1500 });
    await engine.start();
    try {
      await Promise.all([engine.warm(loop), engine.warm(tiny)]);
      const trips = (n: number) => ({ trips: { type: 'int64', dims: [], data: BigInt64Array.from([BigInt(n)]) } });
      // A short loop answers: the model itself is fine.
      expect(Array.from((await engine.run(loop, trips(10))).count!.data as Float32Array)).toEqual([10]);

      const x = new Float32Array([1, 2, 3, 4]);
      const want = Array.from((await directRun(tinyMlp(), { input: { data: x, dims: [1, 4] } })).output!);
      const tinyRun = async () =>
        Array.from((await engine.run(tiny, { input: { type: 'float32', dims: [1, 4], data: x.slice() } })).output!.data as Float32Array);

      const stuck = engine.run(loop, trips(2_000_000_000)).then(
        () => null,
        (e: unknown) => e,
      );
      expect(await tinyRun()).toEqual(want); // on the other thread, while the loop holds one
      const err = await stuck;
      expect(err).toBeInstanceOf(EngineFault);
      expect(err).toMatchObject({ code: 'timeout', fault: 'time' });
      expect((err as Error).message).toMatch(/the model run \(loop@1\) exceeded its time limit of 1500 ms \(MODELQ_ENGINE_RUN_TIMEOUT_MS\)/);
      expect(engine.replaced).toBe(1);
      // Fresh threads: both models answer again (the loop model is loaded anew where it was lost).
      for (let i = 0; i < 4; i++) expect(await tinyRun()).toEqual(want);
      expect(Array.from((await engine.run(loop, trips(5))).count!.data as Float32Array)).toEqual([5]);
    } finally {
      await engine.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

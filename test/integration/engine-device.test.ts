// MODELQ_DEVICE=cuda where CUDA cannot be used: the engine falls back to CPU by itself, says so
// once, and answers correctly. CUDA is hidden from this test process (CUDA_VISIBLE_DEVICES=-1, set
// before any session exists), so the fallback is what runs on every machine, a GPU host included;
// engine-device-gpu.test.ts holds what a GPU host sees with CUDA in view.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../core/logger.ts';
import { Engine } from '../../workers/engine/engine.ts';
import { directRun, tinyMlp, tmpDir } from '../fixtures/models.ts';

process.env.CUDA_VISIBLE_DEVICES = '-1';

describe('engine device', () => {
  it('falls back from cuda to cpu with one warning when CUDA is unavailable', async () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: unknown, msg: string) => void warnings.push(msg), info() {}, error() {}, debug() {} } as unknown as Logger;
    const dir = tmpDir('engine');
    const file = path.join(dir, 'tiny.onnx');
    fs.writeFileSync(file, tinyMlp());
    const engine = new Engine({ threads: 2, device: 'cuda', logger });
    await engine.start();
    try {
      const model = { sha256: 'f'.repeat(64), path: file };
      const sig = await engine.inspect(model);
      expect(sig.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
      const x = new Float32Array([1, 2, 3, 4]);
      const outs = await Promise.all([0, 1, 2, 3].map(() => engine.run(model, { input: { type: 'float32', dims: [1, 4], data: x.slice() } })));
      const want = (await directRun(tinyMlp(), { input: { data: x, dims: [1, 4] } })).output!;
      for (const o of outs) expect(Array.from(o.output!.data as Float32Array)).toEqual(Array.from(want));
      expect(engine.device).toBe('cpu');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/CUDA execution provider unavailable, using CPU/);
    } finally {
      await engine.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// MODELQ_DEVICE=cuda on a GPU host: the engine's sessions use CUDA, nothing falls back, and the
// answers agree with onnxruntime on the CPU. Skipped, with the reason printed, where onnxruntime
// cannot create a CUDA session (engine-device.test.ts covers the fallback everywhere).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../core/logger.ts';
import { Engine } from '../../workers/engine/engine.ts';
import { directRun, tinyMlp, tmpDir } from '../fixtures/models.ts';
import { cudaForTests } from '../helpers/cuda.ts';

const cuda = await cudaForTests('engine-device-gpu');

describe('engine device on a GPU host', () => {
  it.skipIf(!cuda.available)(`runs on cuda without a fallback warning${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`, async () => {
    const warnings: string[] = [];
    const logger = { warn: (_o: unknown, msg: string) => void warnings.push(msg), info() {}, error() {}, debug() {} } as unknown as Logger;
    const dir = tmpDir('engine');
    const file = path.join(dir, 'tiny.onnx');
    fs.writeFileSync(file, tinyMlp());
    const engine = new Engine({ threads: 2, device: 'cuda', logger });
    await engine.start();
    try {
      const model = { sha256: 'f'.repeat(64), path: file };
      const x = new Float32Array([1, 2, 3, 4]);
      const outs = await Promise.all([0, 1, 2, 3].map(() => engine.run(model, { input: { type: 'float32', dims: [1, 4], data: x.slice() } })));
      const want = (await directRun(tinyMlp(), { input: { data: x, dims: [1, 4] } })).output!;
      for (const o of outs) Array.from(o.output!.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
      expect(engine.device).toBe('cuda');
      expect(warnings).toEqual([]);
    } finally {
      await engine.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Where an engine thread's time goes when it scores batch rows: the segment scorer of
// workers/engine/score-segment.ts on 1024-row JSONL segments, in this process, with onnxruntime's
// run timed apart from parsing and formatting, fast row path on and off (MODELQ_FAST_ROWS).
import * as ort from 'onnxruntime-node';
import type { RawTensor } from '../../core/tensors.ts';
import { scoreSegment } from '../../workers/engine/score-segment.ts';

export interface SegmentProfile {
  fast: boolean;
  rowsPerSecond: number;
  runShare: number;
  msPer1kRows: { run: number; rest: number };
}

export async function profileSegments(model: Uint8Array, jsonl: Buffer, features: number, reps = 5): Promise<SegmentProfile[]> {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  let runMs = 0;
  const run = async (feeds: Record<string, RawTensor>) => {
    const t = performance.now();
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor(v.type as 'float32', v.data as Float32Array, v.dims);
    const o = await s.run(f);
    const r: Record<string, RawTensor> = {};
    for (const [k, v] of Object.entries(o)) r[k] = { type: v.type, dims: [...v.dims], data: v.data as Float32Array };
    runMs += performance.now() - t;
    return r;
  };
  const inputs = [{ name: s.inputNames[0]!, datatype: 'FP32' as const, shape: [-1, features] }];
  const rows = jsonl.toString('latin1').split('\n').filter(Boolean).length;
  const out: SegmentProfile[] = [];
  try {
    for (const fast of [true, false]) {
      await scoreSegment({ format: 'jsonl', inputs, firstRow: 0, bytes: Buffer.from(jsonl) }, run, fast); // warm-up
      runMs = 0;
      const t = performance.now();
      for (let k = 0; k < reps; k++) await scoreSegment({ format: 'jsonl', inputs, firstRow: 0, bytes: Buffer.from(jsonl) }, run, fast);
      const all = performance.now() - t;
      const per1k = 1000 / (rows * reps);
      out.push({ fast, rowsPerSecond: (rows * reps) / (all / 1000), runShare: runMs / all, msPer1kRows: { run: runMs * per1k, rest: (all - runMs) * per1k } });
    }
  } finally {
    await s.release();
  }
  return out;
}

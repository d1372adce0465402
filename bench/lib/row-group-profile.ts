// Where an engine thread's time goes when it scores a Parquet row group: the scorer of
// workers/engine/score-parquet.ts on the batch file's first row group, in this process, with
// onnxruntime's run timed apart from decoding and formatting, the fast column decoder on and off.
import * as ort from 'onnxruntime-node';
import { metadataOf, planParquet, readFooter, rowGroupChunks } from '../../core/rows/parquet.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { scoreRowGroup } from '../../workers/engine/score-parquet.ts';
import type { SegmentProfile } from './segment-profile.ts';

export async function profileRowGroup(model: Uint8Array, file: Uint8Array, features: number, reps = 3): Promise<SegmentProfile[]> {
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
  const footer = await readFooter(async (a, b) => file.subarray(a, b), file.length);
  const meta = metadataOf(footer);
  const c = rowGroupChunks(meta)[0]!;
  const job = () => ({
    footer,
    bytes: file.slice(c.start, c.end),
    start: c.start,
    fileBytes: file.length,
    inputs,
    plan: planParquet(meta, inputs),
    firstRow: c.firstRow,
    rows: c.rows,
  });
  const out: SegmentProfile[] = [];
  try {
    for (const fast of [true, false]) {
      await scoreRowGroup(job(), run, fast); // warm-up
      runMs = 0;
      const t = performance.now();
      for (let k = 0; k < reps; k++) await scoreRowGroup(job(), run, fast);
      const all = performance.now() - t;
      const per1k = 1000 / (c.rows * reps);
      out.push({
        fast,
        rowsPerSecond: (c.rows * reps) / (all / 1000),
        runShare: runMs / all,
        msPer1kRows: { run: runMs * per1k, rest: (all - runMs) * per1k },
      });
    }
  } finally {
    await s.release();
  }
  return out;
}

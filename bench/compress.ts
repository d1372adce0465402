// Compression: rows/s of the MLP 256-1024-1024-10 before and after quantize-int8 (per tensor and
// per channel) at batch 1, 32, 128 and 256, one onnxruntime thread, measured in the same run.
import * as ort from 'onnxruntime-node';
import { buildMlp } from '../workers/onnx/builder.ts';
import { quantizeInt8 } from '../workers/onnx/quantize/dynamic.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

async function rowsPerSecond(bytes: Uint8Array, batch: number): Promise<number> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const x = new ort.Tensor('float32', Float32Array.from({ length: batch * 256 }, () => Math.random()), [batch, 256]);
  for (let i = 0; i < 3; i++) await s.run({ input: x });
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    await s.run({ input: x });
    runs++;
  }
  const rps = (runs * batch) / ((performance.now() - t0) / 1000);
  await s.release();
  return rps;
}

export async function benchCompress() {
  const model = buildMlp({ sizes: [256, 1024, 1024, 10], seed: 1 });
  const int8 = quantizeInt8(model).bytes;
  const perChannel = quantizeInt8(model, { perChannel: true }).bytes;
  console.log(`compress: MLP 256-1024-1024-10, float32 ${(model.length / 1024).toFixed(0)} KiB, int8 ${(int8.length / 1024).toFixed(0)} KiB (${(int8.length / model.length).toFixed(2)}x), ${SECONDS} s per cell, 1 onnxruntime thread`);
  console.log('batch   float32 rows/s   int8 rows/s   ratio   int8/channel rows/s   ratio');
  for (const batch of [1, 32, 128, 256]) {
    const base = await rowsPerSecond(model, batch);
    const q = await rowsPerSecond(int8, batch);
    const c = await rowsPerSecond(perChannel, batch);
    console.log(`${String(batch).padStart(5)}   ${base.toFixed(0).padStart(14)}   ${q.toFixed(0).padStart(11)}   ${(q / base).toFixed(2).padStart(4)}x   ${c.toFixed(0).padStart(19)}   ${(c / base).toFixed(2).padStart(4)}x`);
  }
}

// The raw onnxruntime limit of batch scoring: session.run on ready-made float32 tensors of `batch`
// rows, nothing parsed or formatted. Usage: tsx bench/lib/raw-onnx.ts --model FILE --threads N [--rows 100000] [--batch 512]
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    threads: { type: 'string', default: '1' },
    rows: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '512' },
  },
});
const threads = Number(values.threads);
const batch = Number(values.batch);
const session = await ort.InferenceSession.create(values.model!, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const width = (session.inputMetadata[0] as unknown as { shape: readonly number[] }).shape[1]!;
const x = new Float32Array(batch * width).map((_, i) => Math.sin(i));
const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', x, [batch, width]) };
await session.run(feeds); // warm-up
const runs = Math.ceil(Number(values.rows) / batch);
const t0 = performance.now();
for (let i = 0; i < runs; i++) await session.run(feeds);
const seconds = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    rows: runs * batch,
    seconds,
    rowsPerSecond: (runs * batch) / seconds,
    threads,
    cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6,
  }),
);

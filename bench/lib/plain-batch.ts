// The floor any platform pays for JSONL batch scoring: read the file line by line, JSON.parse,
// run onnxruntime in batches of `batch` rows, write one JSONL line per row. One process, no queue.
// Usage: tsx bench/lib/plain-batch.ts --model FILE --input FILE --output FILE [--threads N] [--batch 512]
import fs from 'node:fs';
import readline from 'node:readline';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    input: { type: 'string' },
    output: { type: 'string' },
    threads: { type: 'string', default: '0' },
    batch: { type: 'string', default: '512' },
  },
});
const threads = Number(values.threads);
const batch = Number(values.batch);
const session = await ort.InferenceSession.create(values.model!, { intraOpNumThreads: threads || undefined, graphOptimizationLevel: 'all' });
const inName = session.inputNames[0]!;
const width = (session.inputMetadata[0] as unknown as { shape: readonly (number | string)[] }).shape[1] as number;
const out = fs.createWriteStream(values.output!);
const t0 = performance.now();
let rows = 0;
let pending: { n: number; id: unknown; x: number[] }[] = [];

async function flush() {
  if (!pending.length) return;
  const data = new Float32Array(pending.length * width);
  pending.forEach((p, i) => data.set(p.x, i * width));
  const res = await session.run({ [inName]: new ort.Tensor('float32', data, [pending.length, width]) });
  let text = '';
  pending.forEach((p, i) => {
    const outputs: Record<string, number[]> = {};
    for (const [name, t] of Object.entries(res)) {
      const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
      outputs[name] = Array.from((t.data as Float32Array).subarray(i * per, (i + 1) * per));
    }
    text += `${JSON.stringify({ row: p.n, id: p.id, outputs })}\n`;
  });
  if (!out.write(text)) await new Promise<void>((r) => out.once('drain', () => r()));
  pending = [];
}

for await (const line of readline.createInterface({ input: fs.createReadStream(values.input!), crlfDelay: Infinity })) {
  if (!line.trim()) continue;
  const o = JSON.parse(line) as { id?: unknown; input: number[] };
  pending.push({ n: rows++, id: o.id, x: o.input });
  if (pending.length >= batch) await flush();
}
await flush();
await new Promise<void>((r) => out.end(() => r()));
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ rows, seconds, rowsPerSecond: rows / seconds, threads, cpuSeconds: (process.cpuUsage().user + process.cpuUsage().system) / 1e6 }));

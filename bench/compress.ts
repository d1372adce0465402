// Compression: (1) rows/s of the MLP 256-1024-1024-10 before and after quantize-int8 (per tensor
// and per channel) at batch 1, 32, 128 and 256; (2) the exported-model corpus
// (test/fixtures/exported): per model and method, bytes and rows/s at batch 1 and 32 as ratios to
// float32 measured in the same run, and agreement with float32. One onnxruntime thread.
// BENCH_SECONDS (default 2) is the time per cell of (1); BENCH_CORPUS_SECONDS (default 1.5) of (2),
// the best of three thirds. Every ratio is the median of MODELQ_BENCH_REPEATS rounds of float32 then
// the compressed form (bench/lib/fair.ts); both sides run at the same single thread, since what is
// compared is the model, not the thread setting.
import * as ort from 'onnxruntime-node';
import { CORPUS, corpusBytes, corpusFeeds } from '../test/fixtures/exported/corpus.ts';
import { cosine, top1 } from '../test/helpers/agreement.ts';
import { buildMlp } from '../workers/onnx/builder.ts';
import { toFloat16 } from '../workers/onnx/fp16.ts';
import { pruneMagnitude, pruneStructured } from '../workers/onnx/prune/index.ts';
import { DYNAMIC_OPS, quantizeInt8 } from '../workers/onnx/quantize/dynamic.ts';
import { calibrationModel, observeRanges, quantizeStatic, type Ranges } from '../workers/onnx/quantize/static.ts';
import { interleave, median, ratioText, repeats } from './lib/fair.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const CORPUS_SECONDS = Number(process.env.BENCH_CORPUS_SECONDS ?? 1.5);
const OPTS: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 };

async function timed(s: ort.InferenceSession, feeds: Record<string, ort.Tensor>, batch: number, seconds: number): Promise<number> {
  for (let i = 0; i < 3; i++) await s.run(feeds);
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await s.run(feeds);
    runs++;
  }
  return (runs * batch) / ((performance.now() - t0) / 1000);
}

async function rowsPerSecond(bytes: Uint8Array, batch: number): Promise<number> {
  const s = await ort.InferenceSession.create(bytes, OPTS);
  const x = new ort.Tensor(
    'float32',
    Float32Array.from({ length: batch * 256 }, () => Math.random()),
    [batch, 256],
  );
  const rps = await timed(s, { input: x }, batch, SECONDS);
  await s.release();
  return rps;
}

/** Top-1 agreement of two models on 512 uniform rows in [-1, 1): what int8 must keep on any CPU. */
async function uniformTop1(a: Uint8Array, b: Uint8Array): Promise<number> {
  let seed = 17;
  const x = new ort.Tensor(
    'float32',
    Float32Array.from({ length: 512 * 256 }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1),
    [512, 256],
  );
  const run = async (bytes: Uint8Array) => {
    const s = await ort.InferenceSession.create(bytes, OPTS);
    const out = await s.run({ input: x });
    await s.release();
    return out;
  };
  return top1(await run(a), await run(b)) ?? 0;
}

async function benchMlp() {
  const model = buildMlp({ sizes: [256, 1024, 1024, 10], seed: 1 });
  // u8: the default (U8U8, exact everywhere); s7: 7-bit int8 weights; s8: full int8, which saturates without VNNI.
  const forms = (['u8', 's7', 's8'] as const).flatMap((weights) =>
    [false, true].map((perChannel) => ({ name: `int8 ${weights}${perChannel ? '/channel' : ''}`, bytes: quantizeInt8(model, { weights, perChannel }).bytes })),
  );
  console.log(
    `compress: MLP 256-1024-1024-10, float32 ${(model.length / 1024).toFixed(0)} KiB, ${SECONDS} s per cell, 1 onnxruntime thread; ratios against float32 in the same run; top1 on 512 uniform rows in [-1, 1)`,
  );
  console.log('form                  bytes   b1 rows/s  ratio   b32 rows/s  ratio  b256 rows/s  ratio    top1');
  const base = { b1: await rowsPerSecond(model, 1), b32: await rowsPerSecond(model, 32), b256: await rowsPerSecond(model, 256) };
  console.log(
    `${'float32'.padEnd(20)}  ${(model.length / model.length).toFixed(2).padStart(5)}x  ${base.b1.toFixed(0).padStart(10)}  ${'1.00x'.padStart(6)}  ${base.b32.toFixed(0).padStart(11)}  ${'1.00x'.padStart(6)}  ${base.b256.toFixed(0).padStart(11)}  ${'1.00x'.padStart(6)}  ${'1'.padStart(6)}`,
  );
  // Each cell: rounds of float32 then the form (bench/lib/fair.ts); the median rows/s and ratio.
  for (const f of forms) {
    const cells: string[] = [];
    for (const batch of [1, 32, 256]) {
      const c = await interleave({ baseline: () => rowsPerSecond(model, batch), platform: () => rowsPerSecond(f.bytes, batch) });
      cells.push(`${c.medianPlatform.toFixed(0).padStart(batch === 1 ? 10 : 11)}  ${ratioText(c.ratio, c.ratios.length)}`);
    }
    console.log(
      `${f.name.padEnd(20)}  ${(f.bytes.length / model.length).toFixed(2).padStart(5)}x  ${cells.join('  ')}  ${(await uniformTop1(model, f.bytes)).toFixed(3).padStart(6)}`,
    );
  }
}

async function staticInt8(bytes: Uint8Array): Promise<Uint8Array> {
  const c = calibrationModel(bytes);
  const s = await ort.InferenceSession.create(c.bytes, OPTS);
  const ranges: Ranges = {};
  for (const seed of [11, 12, 13, 14]) observeRanges(ranges, await s.run(corpusFeeds(bytes, 8, seed)), c.tensors);
  await s.release();
  return quantizeStatic(bytes, ranges).bytes;
}

/** Every method's result for one model; a method that cannot apply says why. */
async function variants(bytes: Uint8Array): Promise<[string, Uint8Array | string][]> {
  const tryIt = async (f: () => Uint8Array | Promise<Uint8Array>) => {
    try {
      return await f();
    } catch (e) {
      return (e as Error).message.slice(0, 60);
    }
  };
  return [
    ['int8 dynamic', await tryIt(() => quantizeInt8(bytes).bytes)],
    ['int8 dyn, Conv float', await tryIt(() => quantizeInt8(bytes, { ops: DYNAMIC_OPS.filter((o) => o !== 'Conv') }).bytes)],
    ['int8 static QDQ', await tryIt(() => staticInt8(bytes))],
    ['fp16', await tryIt(() => toFloat16(bytes).bytes)],
    ['prune 50%', await tryIt(() => pruneMagnitude(bytes, 0.5).bytes)],
    ['prune channels 0.75', await tryIt(() => pruneStructured(bytes, 0.75).bytes)],
  ];
}

async function measure(bytes: Uint8Array, parent: Uint8Array) {
  const s = await ort.InferenceSession.create(bytes, OPTS);
  const check = corpusFeeds(parent, 64, 7);
  const out = await s.run(check);
  const speeds = [];
  // Best of three short runs: on a shared machine the slow runs are other processes' doing.
  for (const batch of [1, 32]) {
    const feeds = corpusFeeds(parent, batch, 5);
    let best = 0;
    for (let i = 0; i < 3; i++) best = Math.max(best, await timed(s, feeds, batch, CORPUS_SECONDS / 3));
    speeds.push(best);
  }
  await s.release();
  return { out, b1: speeds[0]!, b32: speeds[1]! };
}

async function benchCorpus() {
  console.log(
    `\ncompress: exported corpus, ${CORPUS_SECONDS} s per cell (best of 3 thirds), 1 onnxruntime thread; ratios against float32 measured in the same run; agreement on 64 realistic rows (cos = cosine of outputs, top1 = argmax agreement)`,
  );
  console.log('model               method                 bytes   ratio   b1 rows/s  ratio   b32 rows/s  ratio     cos   top1');
  const row = (cells: (string | number)[]) =>
    console.log(cells.map((c, i) => String(c)[i < 2 ? 'padEnd' : 'padStart']([20, 20, 8, 6, 10, 8, 11, 8, 7, 6][i]!)).join('  '));
  for (const { name } of CORPUS) {
    const parent = corpusBytes(name);
    const base = await measure(parent, parent);
    row([name, 'float32', parent.length, '1.00x', base.b1.toFixed(0), '1.00x', base.b32.toFixed(0), '1.00x', '1', '1']);
    for (const [method, v] of await variants(parent)) {
      if (typeof v === 'string') {
        row([name, method, '-', '-', '-', '-', '-', '-', '-', '-']);
        console.log(`    (${v})`);
        continue;
      }
      // Rounds of float32 then the variant (bench/lib/fair.ts): median rows/s and ratios.
      let m!: Awaited<ReturnType<typeof measure>>;
      const speeds: Record<'b1' | 'b32', { base: number; it: number }[]> = { b1: [], b32: [] };
      for (let round = 0; round < repeats(); round++) {
        const b = round === 0 ? base : await measure(parent, parent);
        m = await measure(v, parent);
        for (const k of ['b1', 'b32'] as const) speeds[k].push({ base: b[k], it: m[k] });
      }
      const med = (k: 'b1' | 'b32') => median(speeds[k].map((x) => x.it)).toFixed(0);
      const ratio = (k: 'b1' | 'b32') => ratioText(median(speeds[k].map((x) => x.it / x.base)), speeds[k].length);
      const t = top1(base.out, m.out);
      row([
        name,
        method,
        v.length,
        `${(v.length / parent.length).toFixed(2)}x`,
        med('b1'),
        ratio('b1'),
        med('b32'),
        ratio('b32'),
        cosine(base.out, m.out).toFixed(4),
        t === undefined ? '-' : t.toFixed(2),
      ]);
    }
  }
}

export async function benchCompress() {
  await benchMlp();
  await benchCorpus();
}

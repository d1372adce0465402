// Image files served by a CNN with declared processing: JPEG files per second, online (:predict with
// one {"b64"} file per request, closed-loop clients) and in a batch (a ZIP of the files, submit to
// completed), each against a plain script measured in the same run: sharp decodes, resizes and crops
// each file with the same steps (test/fixtures/images.ts reference) and onnxruntime runs the CNN in
// this process, one file at a time for online, batches of 16 for the batch. Rounds alternate
// (script, then platform; MODELQ_BENCH_REPEATS rounds, medians shown, bench/lib/fair.ts).
// CPU per file is printed beside the rates (the script's process.cpuUsage, the platform's producer and
// workers from /proc), which holds on a shared machine where files/s do not. BENCH_CPU_PROF=<dir> also
// writes V8 CPU profiles of the platform's main threads (bench/cpu-prof-preload.mjs) and prints where
// each spent the batches (self time by function).
// Env: BENCH_CLIENTS=1,8  BENCH_SECONDS=5  BENCH_WARMUP_SECONDS=1  BENCH_WORKERS=1  BENCH_IMAGE_FILES=2000  BENCH_IMAGE_SIZE=224
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { zipSync } from 'fflate';
import * as ort from 'onnxruntime-node';
import { convNet } from '../test/fixtures/models.ts';
import { topSelfTime } from './batch-ref.ts';
import { draw, reference, type Reference } from '../test/fixtures/images.ts';
import { postFile } from './lib/batch-input.ts';
import { interleave, median, ratioText } from './lib/fair.ts';
import { runLoad, type LoadResult } from './lib/load.ts';
import { startPlatform } from './lib/platform.ts';

const envNum = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
const envList = (k: string) =>
  process.env[k]
    ?.split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);

const REF: Reference = { shorter: 20, crop: 16, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
const PROCESSING = {
  inputs: [
    {
      type: 'image',
      input: 'image',
      resize: { mode: 'shorter-side', size: REF.shorter },
      centerCrop: { width: REF.crop, height: REF.crop },
      normalize: { mean: REF.mean, std: REF.std },
    },
  ],
  post: { output: 'logits', softmax: true, argmax: true },
};
const PER = 3 * REF.crop * REF.crop;

export async function benchImages(): Promise<unknown> {
  const clients = envList('BENCH_CLIENTS') ?? [1, 8];
  const seconds = envNum('BENCH_SECONDS') ?? 5;
  const warmupSeconds = envNum('BENCH_WARMUP_SECONDS') ?? 1;
  const count = envNum('BENCH_IMAGE_FILES') ?? 2000;
  const size = envNum('BENCH_IMAGE_SIZE') ?? 224;
  const model = convNet(11);
  // A few distinct pictures, cycled: JPEGs of the size asked.
  const pictures = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      draw(
        {
          width: size + i,
          height: Math.round(size * 0.75) + i,
          background: [(i * 40) % 256, 120, 200 - i * 10],
          circle: [size / 3, size / 3, size / 5, '#ff2020'],
        },
        'jpeg',
      ),
    ),
  );
  const files = Array.from({ length: count }, (_, i) => pictures[i % pictures.length]!);
  console.log(
    `images: CNN with declared processing, ${count} JPEG files of about ${size}x${Math.round(size * 0.75)}; clients ${clients.join(',')}, ${seconds} s + ${warmupSeconds} s per run; ${os.cpus().length} cpus`,
  );

  const session = await ort.InferenceSession.create(model);
  const script = async (batch: Buffer[]) => {
    const x = new Float32Array(batch.length * PER);
    (await Promise.all(batch.map((f) => reference(f, REF)))).forEach((t, i) => x.set(t, i * PER));
    await session.run({ image: new ort.Tensor('float32', x, [batch.length, 3, REF.crop, REF.crop]) });
  };
  /** Files per second of the script, one at a time, for `seconds`. */
  const scriptOnline = async () => {
    const end = performance.now() + seconds * 1000;
    let n = 0;
    while (performance.now() < end) await script([files[n++ % files.length]!]);
    return n / seconds;
  };
  const scriptBatch = async () => {
    const t = performance.now();
    const c = process.cpuUsage();
    for (let i = 0; i < files.length; i += 16) await script(files.slice(i, i + 16));
    const d = process.cpuUsage(c);
    cpu.script.push((d.user + d.system) / files.length);
    return files.length / ((performance.now() - t) / 1000);
  };

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-images-'));
  const prof = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : undefined;
  const saved = { ...process.env };
  if (prof) {
    // Node 20 refuses --cpu-prof in NODE_OPTIONS: a preload profiles each process's main thread instead.
    fs.mkdirSync(prof, { recursive: true });
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --import ${path.resolve(import.meta.dirname, 'cpu-prof-preload.mjs')}`.trim();
  }
  const p = await startPlatform({ workers: envNum('BENCH_WORKERS') ?? 1 }).finally(() => (process.env = saved));
  /** CPU microseconds per file: the script's (this process), the platform's producer and workers'. */
  const cpu = { script: [] as number[], producer: [] as number[], workers: [] as number[] };
  const spans: [number, number][] = [];
  const onlineSpans: [number, number][] = [];
  const micros = () => Number(process.hrtime.bigint() / 1000n);
  try {
    await p.register('bench-cnn', model);
    const put = await fetch(`${p.url}/v1/models/bench-cnn/versions/1/processing`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(PROCESSING),
    });
    if (!put.ok) throw new Error(`processing: HTTP ${put.status} ${await put.text()}`);
    const url = `${p.url}/v1/models/bench-cnn:predict`;
    const body = JSON.stringify({ instances: [{ b64: pictures[0]!.toString('base64') }] });
    const primed = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    if (!primed.ok) throw new Error(`priming: HTTP ${primed.status} ${await primed.text()}`);

    const online: { clients: number; platform: LoadResult; script: number; ratio: number; rounds: number }[] = [];
    for (const c of clients) {
      const runs: LoadResult[] = [];
      const cpuOnline: { producer: number; workers: number }[] = [];
      const r = await interleave({
        baseline: scriptOnline,
        platform: async () => {
          const c0 = p.cpuByProcess();
          const span: [number, number] = [micros(), 0];
          const x = await runLoad({ url, body, concurrency: c, durationMs: seconds * 1000, warmupMs: warmupSeconds * 1000 });
          const c1 = p.cpuByProcess();
          span[1] = micros();
          onlineSpans.push(span);
          if (x.errors) throw new Error(`online: ${x.errors} errors`);
          runs.push(x);
          // The warm-up's requests are not counted: take them at the window's rate.
          const n = x.rps * (seconds + warmupSeconds);
          cpuOnline.push({
            producer: ((c1.producer - c0.producer) * 1e6) / n,
            workers: ((c1.workers.reduce((a, b) => a + b, 0) - c0.workers.reduce((a, b) => a + b, 0)) * 1e6) / n,
          });
          return x.rps;
        },
      });
      console.log(
        `online, ${c} client(s): CPU per request (medians; /proc, 10 ms ticks; warm-up requests taken at the measured rate): ` +
          `producer ${median(cpuOnline.map((x) => x.producer)).toFixed(0)} us, workers ${median(cpuOnline.map((x) => x.workers)).toFixed(0)} us`,
      );
      online.push({
        clients: c,
        platform: [...runs].sort((a, b) => a.rps - b.rps)[(runs.length - 1) >> 1]!,
        script: r.medianBaseline,
        ratio: r.ratio,
        rounds: r.ratios.length,
      });
    }

    const zip = path.join(dir, 'files.zip');
    fs.writeFileSync(zip, zipSync(Object.fromEntries(files.map((f, i) => [`img-${String(i).padStart(6, '0')}.jpg`, new Uint8Array(f)]))));
    const platformBatch = async () => {
      const t = performance.now();
      const c0 = p.cpuByProcess();
      const span: [number, number] = [micros(), 0];
      const res = await postFile(`${p.url}/v1/batches?model=bench-cnn`, zip, 'application/zip');
      if (res.status !== 202) throw new Error(`batch: HTTP ${res.status} ${res.body}`);
      const { id } = JSON.parse(res.body) as { id: string };
      for (;;) {
        const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string; requestCounts: { completed: number } };
        if (['completed', 'failed', 'cancelled'].includes(v.status)) {
          if (v.status !== 'completed' || v.requestCounts.completed !== count)
            throw new Error(`batch: ${v.status}, ${v.requestCounts.completed} of ${count} files`);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      const c1 = p.cpuByProcess();
      span[1] = micros();
      spans.push(span);
      cpu.producer.push(((c1.producer - c0.producer) * 1e6) / count);
      cpu.workers.push((c1.workers.reduce((a, b) => a + b, 0) - c0.workers.reduce((a, b) => a + b, 0)) * (1e6 / count));
      return count / ((performance.now() - t) / 1000);
    };
    const batch = await interleave({ baseline: scriptBatch, platform: platformBatch });

    console.log('\n| clients | platform files/s | p50 ms | p99 ms | script files/s (one at a time) | platform/script |');
    console.log('|---|---|---|---|---|---|');
    for (const r of online)
      console.log(
        `| ${r.clients} | ${r.platform.rps.toFixed(0)} | ${r.platform.p50Ms.toFixed(1)} | ${r.platform.p99Ms.toFixed(1)} | ${r.script.toFixed(0)} | ${ratioText(r.ratio, r.rounds)} |`,
      );
    console.log(
      `batch (ZIP of ${count} JPEGs, submit to completed): platform ${median(batch.platform).toFixed(0)} files/s, ` +
        `script (batches of 16) ${median(batch.baseline).toFixed(0)} files/s: platform/script ${ratioText(batch.ratio, batch.ratios.length)}`,
    );
    const us = (xs: number[]) => `${median(xs).toFixed(0)} us`;
    console.log(
      `batch CPU per file (medians; /proc, 10 ms ticks): script ${us(cpu.script)}; platform ${us(cpu.producer.map((x, i) => x + cpu.workers[i]!))} ` +
        `(producer ${us(cpu.producer)}, workers ${us(cpu.workers)})`,
    );
    return { online, batch, cpuPerFileUs: { script: median(cpu.script), producer: median(cpu.producer), workers: median(cpu.workers) } };
  } finally {
    await session.release();
    await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    for (const [what, s] of prof
      ? ([
          ['online', onlineSpans],
          ['batch', spans],
        ] as const)
      : []) {
      if (!s.length) continue;
      const window: [number, number] = [s[0]![0], s.at(-1)![1]];
      for (const f of fs.readdirSync(prof!).filter((x) => /^(producer|workers)-.*\.cpuprofile$/.test(x))) {
        const r = topSelfTime(path.join(prof!, f), window, 20);
        console.log(
          `${what}: cpu profile ${f}, main thread busy ${(r.busy * 100).toFixed(0)}% from the first run to the last; of that:\n  ${r.top.join('\n  ')}`,
        );
      }
    }
  }
}

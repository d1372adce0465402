// Parquet decoding for batch scoring, without the model: a row group's list<float> input column
// into the runs' Float32Arrays, by hyparquet (per-row JS arrays, then copied; what MODELQ_FAST_ROWS=0
// does) and by the fast decoder (workers/rows/parquet-fast.ts), on the batch benchmark's file
// (hyparquet-writer, pages v2, snappy) and on the same rows written by arrow-rs (pages v1, snappy).
// Env: BENCH_PARQUET_ROWS=40000 (rows; row groups of 10,000), BENCH_PARQUET_REPS=3.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Field, Float32, Int64, List, Table, tableToIPC, vectorFromArray } from 'apache-arrow';
import * as pw from 'parquet-wasm/node';
import type { Target } from '../core/rows/parquet-column.ts';
import { FastRowGroup } from '../workers/rows/parquet-fast.ts';
import { decodeRowGroup, metadataOf, planParquet, readFooter, rowGroupChunks } from '../core/rows/parquet.ts';
import type { TensorSpec } from '../core/tensors.ts';
import { writeParquetInput } from './lib/batch-input.ts';
import { interleave, ratioText, repeats } from './lib/fair.ts';

const ROWS = Number(process.env.BENCH_PARQUET_ROWS ?? 40_000);
const REPS = Number(process.env.BENCH_PARQUET_REPS ?? 3);
const F = 256;
const RUN = 512;
const inputs: TensorSpec[] = [{ name: 'input', datatype: 'FP32', shape: [-1, F] }];

/** The hyparquet-writer file re-written by arrow-rs: pages v1, snappy, row groups of 10,000. */
async function arrowCopy(file: Uint8Array): Promise<Uint8Array> {
  const { parquetReadObjects } = await import('hyparquet');
  const rows = (await parquetReadObjects({ file: file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer })) as {
    id: bigint;
    input: number[];
  }[];
  const table = new Table({
    id: vectorFromArray(
      rows.map((r) => r.id),
      new Int64(),
    ),
    input: vectorFromArray(
      rows.map((r) => r.input),
      new List(new Field('item', new Float32(), false)),
    ),
  });
  const props = new pw.WriterPropertiesBuilder().setCompression(pw.Compression.SNAPPY).setWriterVersion(pw.WriterVersion.V1).setMaxRowGroupSize(10_000).build();
  return pw.writeParquet(pw.Table.fromIPCStream(tableToIPC(table, 'stream')), props);
}

async function measure(file: Uint8Array, fast: boolean): Promise<number> {
  const footer = await readFooter(async (s, e) => file.subarray(s, e), file.length);
  const meta = metadataOf(footer);
  const plan = planParquet(meta, inputs);
  let sink = 0;
  const t = performance.now();
  for (let rep = 0; rep < REPS; rep++) {
    for (const c of rowGroupChunks(meta)) {
      const g = { footer, bytes: file.slice(c.start, c.end), start: c.start, fileBytes: file.length, firstRow: c.firstRow, rows: c.rows };
      if (fast) {
        const reader = FastRowGroup.open(meta, plan, inputs, [F], g);
        if (!reader) throw new Error('the fast decoder does not take this file');
        for (let at = 0; at < c.rows; at += RUN) {
          const a = new Float32Array(Math.min(RUN, c.rows - at) * F);
          reader.read(Math.min(RUN, c.rows - at), [a as Target]);
          sink += a[0]!;
        }
        continue;
      }
      const cols = await decodeRowGroup(g, ['input'], c.firstRow, c.rows);
      const col = cols.get('input')!;
      for (let at = 0; at < c.rows; at += RUN) {
        const n = Math.min(RUN, c.rows - at);
        const a = new Float32Array(n * F);
        for (let r = 0; r < n; r++) {
          const v = col[at + r] as number[];
          for (let k = 0; k < F; k++) a[r * F + k] = Number(v[k]);
        }
        sink += a[0]!;
      }
    }
  }
  if (Number.isNaN(sink)) console.log('(sink)');
  return ((performance.now() - t) * 1000) / (ROWS * REPS);
}

export async function benchParquetDecode() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-bench-pq-'));
  try {
    const file = path.join(dir, 'input.parquet');
    await writeParquetInput(file, ROWS, F);
    const files = { 'hyparquet-writer (v2 pages, snappy)': new Uint8Array(fs.readFileSync(file)) } as Record<string, Uint8Array>;
    files['arrow-rs (v1 pages, snappy)'] = await arrowCopy(files['hyparquet-writer (v2 pages, snappy)']!);
    console.log(
      `parquet-decode: ${ROWS} rows x ${F} floats (list<float>), row groups of 10,000, runs of ${RUN} rows, ${REPS} reps per measure, ${repeats()} interleaved rounds (medians)`,
    );
    console.log('\n| file | hyparquet + copy (us/row) | fast decoder (us/row) | speed-up |');
    console.log('|---|---|---|---|');
    for (const [name, bytes] of Object.entries(files)) {
      await measure(bytes, true); // warm-up
      // Rounds of hyparquet then the fast decoder (bench/lib/fair.ts); figures are rows per microsecond.
      const r = await interleave({ baseline: async () => 1 / (await measure(bytes, false)), platform: async () => 1 / (await measure(bytes, true)) });
      console.log(`| ${name} | ${(1 / r.medianBaseline).toFixed(2)} | ${(1 / r.medianPlatform).toFixed(2)} | ${ratioText(r.ratio, r.ratios.length, 1)} |`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

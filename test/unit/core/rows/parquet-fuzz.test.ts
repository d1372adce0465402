// Fuzzing the Parquet reader (issue 25): mutations of valid files (truncations, flipped bytes,
// hostile counts and sizes, wrong encodings and types, deep nesting) through the path a worker
// takes (footer plan, then each row group through the fast decoder or hyparquet, scored by a stand-in
// model). Each file must decode, or fail with a ParquetShapeError that says what is wrong: never
// another error from deep inside, a hang (the test's timeout) or memory past the limits' reach.
// MODELQ_FUZZ_CASES=20000 runs longer; MODELQ_FUZZ_SEED=n MODELQ_FUZZ_CASES=1 replays a failure.
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParquetShapeError } from '../../../../core/rows/parquet-errors.ts';
import { footerPlan } from '../../../../core/rows/parquet-footer.ts';
import { parquetLimits, type ParquetLimits } from '../../../../core/rows/parquet-limits.ts';
import { readFooter } from '../../../../core/rows/parquet.ts';
import type { RawTensor, TensorSpec } from '../../../../core/tensors.ts';
import { scoreRowGroup } from '../../../../workers/engine/score-parquet.ts';
import type { RunFeeds } from '../../../../workers/engine/score-segment.ts';
import { fuzzCases, fuzzSeed, rand } from '../../../helpers/fuzz.ts';
import { smallFile } from '../../../helpers/parquet-hostile.ts';
import { mutate } from '../../../helpers/parquet-mutate.ts';
import { writeArrow, writeHyparquet, type Rows } from '../../../helpers/parquet-writers.ts';

const CASES = fuzzCases(300);
// Small limits: whatever a file makes the reader allocate stays within a few MB.
const LIMITS: Record<string, string> = {
  MODELQ_PARQUET_MAX_GROUP_ROWS: '4096',
  MODELQ_PARQUET_MAX_PAGE_VALUES: '65536',
  MODELQ_PARQUET_MAX_PAGE_BYTES: String(1024 * 1024),
  MODELQ_PARQUET_MAX_FOOTER_BYTES: String(1024 * 1024),
};
const saved: Record<string, string | undefined> = {};
let limits: ParquetLimits;

/** A stand-in model: the first input back, as numbers (strings by their length). */
const run: RunFeeds = async (feeds) => {
  const t = Object.values(feeds)[0]!;
  const data = Array.isArray(t.data) ? Float32Array.from(t.data as string[], (s) => s.length) : Float32Array.from(t.data as unknown as ArrayLike<number>);
  return { y: { type: 'float32', dims: t.dims, data } as RawTensor };
};

const lists: Rows = {
  ids: [1, 2, null, 4, 5, 6, 7, 8],
  lists: [[1, 2, 3], [4, 5, 6], null, [7, null, 9], [1, 1, 1], [2, 2], [3, 3, 3, 3], [0, 0, 0]],
};
const scalars: Rows = {
  ids: [1, 2, 3, 4, 5, 6],
  scalars: [
    [1, 2, 3],
    [4, null, 6],
    [7, 8, 9],
    [1, 1, 1],
    [2, 2, 2],
    [3, 3, 3],
  ],
};
const list3: TensorSpec[] = [{ name: 'input', datatype: 'FP32', shape: [-1, 3] }];

/** Valid files and the model inputs they feed: each decoder path and page layout the reader has. */
function seeds(): { name: string; file: Uint8Array; inputs: TensorSpec[] }[] {
  const arrow = { batch: 3, groupRows: 4, pageBytes: 64 };
  return [
    { name: 'hyparquet dictionary scalars', file: smallFile(6), inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 1] }] },
    { name: 'hyparquet lists', file: writeHyparquet(lists, 'FLOAT', { codec: 'SNAPPY', pageSize: 64, groupRows: 4 }), inputs: list3 },
    { name: 'arrow v1 dictionary gzip lists', file: writeArrow(lists, 'DOUBLE', { ...arrow, v2: false, dictionary: true, codec: 'GZIP' }), inputs: list3 },
    {
      name: 'arrow v2 plain zstd scalars',
      file: writeArrow(scalars, 'INT64', { ...arrow, v2: true, dictionary: false, codec: 'ZSTD' }),
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 3] }],
    },
    {
      name: 'hyparquet strings (the hyparquet path)',
      file: new Uint8Array(
        parquetWriteBuffer({ columnData: [{ name: 'text', data: ['a', 'bb', 'a', 'ccc', 'a', '', 'bb'], type: 'STRING' }], rowGroupSize: 3 }),
      ),
      inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }],
    },
  ];
}

/** What a worker does with the file: plan from the footer, then score every row group. */
async function readFile(file: Uint8Array, inputs: TensorSpec[]): Promise<number> {
  const footer = await readFooter(async (s, e) => file.subarray(s, e), file.length, limits.footerBytes);
  const { plan, chunks } = footerPlan({ footer, fileBytes: file.length, inputs, groupRows: limits.groupRows });
  let rows = 0;
  for (const c of chunks) {
    const r = await scoreRowGroup(
      { footer, bytes: file.slice(c.start, c.end), start: c.start, fileBytes: file.length, inputs, plan, firstRow: c.firstRow, rows: c.rows },
      run,
    );
    rows += r.rows;
  }
  return rows;
}

beforeAll(() => {
  for (const [k, v] of Object.entries(LIMITS)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  limits = parquetLimits();
});
afterAll(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('Parquet reader fuzzing', () => {
  it('the seed files read whole', async () => {
    for (const s of seeds()) expect(await readFile(s.file, s.inputs), s.name).toBeGreaterThan(0);
  });

  it(`${CASES} mutated files each decode or fail with a ParquetShapeError naming the problem`, { timeout: 60_000 + CASES * 200 }, async () => {
    const files = seeds();
    const outcomes = { decoded: 0, refused: 0 };
    const first = fuzzSeed();
    const base = process.memoryUsage();
    for (let seed = first; seed < first + CASES; seed++) {
      const r = rand(seed);
      const s = r.pick(files);
      const { file, applied } = mutate(s.file, r);
      const what = `seed ${seed} (${s.name}; ${applied.join(', ')})`;
      if (process.env.MODELQ_FUZZ_TRACE) process.stderr.write(`${what}\n`);
      try {
        await readFile(file, s.inputs);
        outcomes.decoded++;
      } catch (e) {
        if (!(e instanceof ParquetShapeError) || !e.message) throw new Error(`${what}: ${(e as Error)?.name}: ${(e as Error)?.message}`, { cause: e });
        outcomes.refused++;
      }
      const m = process.memoryUsage();
      // Bounded memory: nothing a file declares may be allocated past the small limits above.
      if (m.arrayBuffers - base.arrayBuffers > 256 * 1024 * 1024 || m.heapUsed - base.heapUsed > 512 * 1024 * 1024)
        throw new Error(`${what}: memory grew to ${m.heapUsed} heap, ${m.arrayBuffers} array buffers`);
    }
    // The mutations reach both outcomes (a fuzzer whose every case is refused at the footer tests little).
    expect(outcomes.refused).toBeGreaterThan(0);
    if (CASES >= 100) expect(outcomes.decoded).toBeGreaterThan(0);
  });
});

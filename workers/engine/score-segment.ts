// Scores one segment of a batch chunk inside an engine thread: rows are parsed from the bytes
// straight into the run's typed arrays (workers/rows/fast-rows.ts, the ordinary parser for the rest),
// the model runs on SCORE_RUN_ROWS rows at a time, and the output and error lines come back as
// bytes. The worker's main thread only moves bytes, so parsing runs on every engine thread at once.
import type { DriftProfile } from '../../core/drift/index.ts';
import { AppError } from '../../core/errors.ts';
import { fastCsvRow, fastJsonlRow, fastPlan, type FastPlan } from '../rows/fast-rows.ts';
import { OutputEncoder, type EncodedPiece, type EncodeSpec } from '../../core/rows/output-encode.ts';
import { errorLine, idText, outputLines, ownBytes, versionTag, type RowRef } from '../../core/rows/output-lines.ts';
import { type CsvDelimiter, rowParser, type ParsedRow, type RowParser } from '../../core/rows/parse.ts';
import { RowScanner, type RowFormat } from '../../core/rows/scanner.ts';
import { elementCount, toOrtType, type RawTensor, type TensorSpec, TYPED_ARRAYS } from '../../core/tensors.ts';
import type { ExplainRows } from './explain-rows.ts';
import type { RunFeeds } from './run-feeds.ts';
import type { SampledRows } from './drift-rows.ts';

/** Rows per onnxruntime run. Large enough to amortize a run, small enough to keep memory low. */
export const SCORE_RUN_ROWS = 512;

export interface SegmentJob {
  format: RowFormat;
  inputs: TensorSpec[];
  header?: string;
  /** CSV field separator when not a comma. */
  delimiter?: CsvDelimiter;
  /** Row number (in the file) of the segment's first row. */
  firstRow: number;
  bytes: Uint8Array;
  /** Attributions for every scored row (explain-rows.ts). */
  explain?: ExplainRows;
  /** Share of rows sampled for drift (their input values come back in `sample`). */
  driftSample?: number;
  /** Most rows sampled (default MAX_SAMPLED_ROWS). */
  driftMaxRows?: number;
  /** Also encode the output as CSV or Parquet here (`formatted`), from the output tensors. */
  encode?: EncodeSpec;
  /** The version's drift reference: the sampled rows are counted into its bins here (`driftCounts`), not sent back. */
  driftProfile?: DriftProfile;
  /** Every output line names this version (`model_version`): batches over a weighted alias, shadow batches. */
  modelVersion?: number;
}

export interface ScoredSegment {
  out: Uint8Array;
  err: Uint8Array;
  rows: number;
  completed: number;
  failed: number;
  /** Input values of the rows sampled for drift (driftSample). */
  sample?: SampledRows;
  /** The output as the job's `encode` asked. */
  formatted?: EncodedPiece;
  /** The sampled rows counted into the bins of `driftProfile` ("feature:bin" -> rows). */
  driftCounts?: { rows: number; counts: [string, number][] };
}

export type { RunFeeds };

export const TYPED = TYPED_ARRAYS;

const isBadData = (e: unknown) => e instanceof AppError && e.code === 'bad_request';

/** Byte ranges [start, end) of the segment's rows, newline and a CR before it excluded. */
function rowRanges(u: Uint8Array, format: RowFormat): Uint32Array {
  const ranges: number[] = [];
  const scanner = new RowScanner(format, {
    header: false,
    onRow: (s, e) => {
      // As the ordinary split did: JSONL drops a CR at the end of any line, CSV only before a newline.
      const nl = e > s && u[e - 1] === 0x0a;
      if (nl) e--;
      if (e > s && u[e - 1] === 0x0d && (format === 'jsonl' || nl)) e--;
      ranges.push(s, e);
    },
  });
  scanner.push(Buffer.from(u.buffer, u.byteOffset, u.length));
  scanner.end();
  return Uint32Array.from(ranges);
}

/** `fastRows`: MODELQ_FAST_ROWS (the engine thread's init); false parses every row the ordinary way. */
export async function scoreSegment(job: SegmentJob, run: RunFeeds, fastRows = true): Promise<ScoredSegment> {
  const u = job.bytes;
  const ranges = rowRanges(u, job.format);
  const rows = ranges.length / 2;
  // The fast row reader splits on commas: another separator takes the general parser.
  const plan = job.delimiter ? null : fastPlan(job.format, job.inputs, job.header, fastRows);
  const parse = rowParser(job.format, job.inputs, job.header, job.delimiter);
  const text = (r: number) => Buffer.from(u.buffer, u.byteOffset + ranges[2 * r]!, ranges[2 * r + 1]! - ranges[2 * r]!).toString('utf8');
  const acc: Acc = {
    out: '',
    err: [],
    completed: 0,
    failed: 0,
    tag: versionTag(job.modelVersion),
    ...(job.encode ? { enc: new OutputEncoder(job.encode) } : {}),
  };
  for (let at = 0; at < rows; at += SCORE_RUN_ROWS) {
    const end = Math.min(rows, at + SCORE_RUN_ROWS);
    if (plan) await fastRun(job, plan, parse, text, ranges, at, end, run, acc);
    else await genericRun(job, parse, text, at, end, run, acc);
  }
  return finished(acc, rows);
}

export type Acc = { out: string; err: { n: number; line: string }[]; completed: number; failed: number; enc?: OutputEncoder; tag?: string };

/** A segment's or row group's result from what its runs gathered. */
export function finished(acc: Acc, rows: number): ScoredSegment {
  acc.err.sort((a, b) => a.n - b.n);
  const formatted = acc.enc?.finish();
  return {
    out: ownBytes(acc.out),
    err: ownBytes(acc.err.map((e) => e.line).join('')),
    rows,
    completed: acc.completed,
    failed: acc.failed,
    ...(formatted ? { formatted } : {}),
  };
}

/** Rows [at, end) of a fixed-shape FP32 model: parsed into the feeds' arrays in place. */
async function fastRun(
  job: SegmentJob,
  plan: FastPlan,
  parse: RowParser,
  text: (r: number) => string,
  ranges: Uint32Array,
  at: number,
  end: number,
  run: RunFeeds,
  acc: Acc,
) {
  const feeds = plan.inputs.map((i) => new Float32Array((end - at) * i.per));
  const refs: RowRef[] = [];
  const readRow = job.format === 'csv' ? fastCsvRow : fastJsonlRow;
  for (let r = at; r < end; r++) {
    const n = job.firstRow + r;
    const slot = refs.length;
    let id =
      job.format === 'csv' && u8Has(job.bytes, ranges[2 * r]!, ranges[2 * r + 1]!, 0x22)
        ? null
        : readRow(job.bytes, ranges[2 * r]!, ranges[2 * r + 1]!, plan, feeds, slot);
    if (id === null) {
      const p = parse(text(r));
      if ('error' in p) {
        acc.err.push({ n, line: errorLine(n, idText(p.id), p.error) });
        acc.failed++;
        continue;
      }
      plan.inputs.forEach((inp, j) => feeds[j]!.set(p.values[job.inputs[j]!.name] as number[], slot * inp.per));
      id = idText(p.id);
    }
    refs.push({ n, id });
  }
  if (!refs.length) return;
  const k = refs.length;
  const tensors: Record<string, RawTensor> = {};
  plan.inputs.forEach((inp, j) => {
    const spec = job.inputs[j]!;
    tensors[spec.name] = {
      type: 'float32',
      dims: [k, ...spec.shape.slice(1)],
      data: k * inp.per === feeds[j]!.length ? feeds[j]! : feeds[j]!.slice(0, k * inp.per),
    };
  });
  await runRows(
    refs,
    tensors,
    (i) => {
      const one: Record<string, RawTensor> = {};
      plan.inputs.forEach((inp, j) => {
        const spec = job.inputs[j]!;
        one[spec.name] = { type: 'float32', dims: [1, ...spec.shape.slice(1)], data: feeds[j]!.slice(i * inp.per, (i + 1) * inp.per) };
      });
      return one;
    },
    run,
    acc,
  );
}

function u8Has(u: Uint8Array, s: number, e: number, b: number): boolean {
  const i = u.indexOf(b, s);
  return i >= 0 && i < e;
}

/** Runs rows together; when the run fails on bad data, row by row so only the bad rows fail. */
export async function runRows(refs: RowRef[], feeds: Record<string, RawTensor>, feedsOfOne: (i: number) => Record<string, RawTensor>, run: RunFeeds, acc: Acc) {
  let result: Record<string, RawTensor>;
  try {
    result = await run(feeds, refs);
  } catch (e) {
    if (!isBadData(e)) throw e; // a model that does not load fails the chunk
    for (let i = 0; i < refs.length; i++) {
      try {
        const one = await run(feedsOfOne(i), [refs[i]!]);
        acc.out += outputLines(refs, i, i + 1, one, 0, acc.tag);
        acc.enc?.add(refs, i, i + 1, one);
        acc.completed++;
      } catch (e1) {
        if (!isBadData(e1)) throw e1;
        const err = e1 as AppError;
        acc.err.push({ n: refs[i]!.n, line: errorLine(refs[i]!.n, refs[i]!.id, { code: err.code, message: err.message }) });
        acc.failed++;
      }
    }
    return;
  }
  acc.out += outputLines(refs, 0, refs.length, result, 0, acc.tag);
  acc.enc?.add(refs, 0, refs.length, result);
  acc.completed += refs.length;
}

type Parsed = { ref: RowRef; row: ParsedRow };

/** Rows [at, end) of any other model: parsed to values, grouped by shape (open dimensions), run per group. */
async function genericRun(job: SegmentJob, parse: RowParser, text: (r: number) => string, at: number, end: number, run: RunFeeds, acc: Acc) {
  const groups = new Map<string, Parsed[]>();
  for (let r = at; r < end; r++) {
    const n = job.firstRow + r;
    const p = parse(text(r));
    if ('error' in p) {
      acc.err.push({ n, line: errorLine(n, idText(p.id), p.error) });
      acc.failed++;
      continue;
    }
    const key = JSON.stringify(p.shapes);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push({ ref: { n, id: idText(p.id) }, row: p });
  }
  // Groups of different shapes run apart: collect their lines and restore input order.
  const lines: { n: number; line: string }[] = [];
  for (const g of groups.values()) {
    const sub: Acc = { out: '', err: acc.err, completed: 0, failed: 0, ...(acc.tag ? { tag: acc.tag } : {}), ...(acc.enc ? { enc: acc.enc } : {}) };
    const refs = g.map((x) => x.ref);
    await runRows(refs, feedsOf(g, job.inputs), (i) => feedsOf([g[i]!], job.inputs), run, sub);
    acc.completed += sub.completed;
    acc.failed += sub.failed;
    const parts = sub.out.split('\n');
    parts.pop();
    for (const line of parts) lines.push({ n: Number(line.slice(7, line.indexOf(','))), line });
  }
  if (groups.size > 1) lines.sort((a, b) => a.n - b.n);
  for (const l of lines) acc.out += `${l.line}\n`;
}

function feedsOf(rows: Parsed[], inputs: TensorSpec[]): Record<string, RawTensor> {
  const feeds: Record<string, RawTensor> = {};
  for (const input of inputs) {
    const shape = rows[0]!.row.shapes[input.name]!;
    const per = elementCount(shape);
    const dims = [rows.length, ...shape];
    if (input.datatype === 'BYTES') {
      feeds[input.name] = { type: 'string', dims, data: rows.flatMap((r) => r.row.values[input.name]!.map(String)) };
      continue;
    }
    const Ctor = TYPED[input.datatype];
    if (!Ctor) throw new AppError('bad_request', `input "${input.name}": datatype ${input.datatype} is not supported in batches`);
    const arr = new Ctor(rows.length * per);
    const big = arr instanceof BigInt64Array || arr instanceof BigUint64Array;
    rows.forEach((r, i) => {
      const v = r.row.values[input.name]!;
      if (big)
        (arr as BigInt64Array).set(
          v.map((x) => BigInt(x as number)),
          i * per,
        );
      else if (input.datatype === 'BOOL')
        (arr as Uint8Array).set(
          v.map((x) => (x ? 1 : 0)),
          i * per,
        );
      else (arr as Float32Array).set(v as number[], i * per);
    });
    feeds[input.name] = { type: toOrtType(input.datatype), dims, data: arr };
  }
  return feeds;
}

// The engine's segment scorer on a real model: the rows its fast byte readers take (exponents, -0,
// whitespace, CRLF, ids of every JSON type) give the outputs of a direct onnxruntime run on the same
// values, byte for byte the same lines as its ordinary parser (MODELQ_FAST_ROWS=0); a malformed
// line, NaN or Infinity (not JSON numbers) are one error row each; a value past float32's range is
// fed as an infinity, as it always was.
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RawTensor, TensorSpec } from '../../../../core/tensors.ts';
import { buildMlp } from '../../../../workers/onnx/builder.ts';
import { scoreSegment, type RunFeeds, type SegmentJob } from '../../../../workers/engine/score-segment.ts';
import { directRun } from '../../../fixtures/models.ts';

const F = 4;
const model = buildMlp({ sizes: [F, 16, 3], seed: 11 });
const inputs: TensorSpec[] = [{ name: 'input', datatype: 'FP32', shape: [-1, F] }];
let session: ort.InferenceSession;
const run: RunFeeds = async (feeds) => {
  const t: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) t[k] = new ort.Tensor('float32', v.data as Float32Array, v.dims);
  const out = await session.run(t);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, { type: 'float32', dims: [...v.dims], data: v.data } as RawTensor]));
};

beforeAll(async () => {
  session = await ort.InferenceSession.create(model);
});
afterAll(async () => {
  await session?.release();
});

interface Want {
  /** The row's values as float32, or null when the row is an error row. */
  values: number[] | null;
  /** The id as the output line carries it (undefined: none). */
  id?: unknown;
}

/** Scores `text` with and without the fast readers: the same bytes both ways; the output is a direct run's, the errors where expected. */
async function check(text: string, format: 'jsonl' | 'csv', want: Want[], header?: string) {
  const job: SegmentJob = { format, inputs, firstRow: 100, bytes: Buffer.from(text), ...(header ? { header } : {}) };
  const fast = await scoreSegment({ ...job, bytes: Buffer.from(text) }, run, true);
  const slow = await scoreSegment({ ...job, bytes: Buffer.from(text) }, run, false);
  expect(Buffer.from(fast.out).toString()).toBe(Buffer.from(slow.out).toString());
  expect(Buffer.from(fast.err).toString()).toBe(Buffer.from(slow.err).toString());
  const good = want.map((w, i) => ({ ...w, row: 100 + i })).filter((w) => w.values);
  const bad = want.map((w, i) => ({ ...w, row: 100 + i })).filter((w) => !w.values);
  expect(fast).toMatchObject({ rows: want.length, completed: good.length, failed: bad.length });
  const direct = (await directRun(model, { input: { data: Float32Array.from(good.flatMap((w) => w.values!)), dims: [good.length, F] } })).output!;
  const lines = Buffer.from(fast.out)
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { row: number; id?: unknown; outputs: { output: number[] } });
  expect(lines.map((l) => l.row)).toEqual(good.map((w) => w.row));
  lines.forEach((l, i) => {
    expect(l.id).toEqual(good[i]!.id);
    // A value the line cannot hold (NaN, an infinity) is written null, as JSON.stringify writes it.
    expect(l.outputs.output).toEqual(Array.from(direct.subarray(i * 3, (i + 1) * 3), (x) => (Number.isFinite(x) ? x : null)));
  });
  const errs = Buffer.from(fast.err)
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { row: number; error: { code: string } });
  expect(errs.map((e) => e.row)).toEqual(bad.map((w) => w.row));
  for (const e of errs) expect(e.error.code).toBe('bad_row');
}

const f32 = (xs: number[]) => Array.from(Float32Array.from(xs));

describe('scoreSegment on a real model', () => {
  it('JSONL: exponents, -0, whitespace, CRLF and ids of every type as a direct run; bad lines are one error row each', async () => {
    const rows: [string, Want][] = [
      ['{"id":1,"input":[1e-3,2.5E+2,-1.5e1,4E0]}', { id: 1, values: f32([1e-3, 250, -15, 4]) }],
      ['{"id":"a b","input":[-0,0.0,-0.0,1e-45]}\r', { id: 'a b', values: f32([-0, 0, -0, 1e-45]) }],
      [' \t{ "input" : [ 0.1 ,\t0.2 , 0.3,0.4 ] , "id" : -42 } \t', { id: -42, values: f32([0.1, 0.2, 0.3, 0.4]) }],
      [
        '{"id":1.5,"input":[3.4028234e38,-3.4028234e38,1.0000000000000000001,123456789012345678901234]}',
        { id: 1.5, values: f32([3.4028234e38, -3.4028234e38, 1, Number('123456789012345678901234')]) },
      ],
      ['{"id":null,"input":[1,2,3,4]}', { id: null, values: [1, 2, 3, 4] }],
      ['{"id":"\\u00e9\\n\\"x\\"","input":[1,2,3,4]}', { id: 'é\n"x"', values: [1, 2, 3, 4] }],
      ['{"id":true,"input":[5,6,7,8]}', { id: true, values: [5, 6, 7, 8] }],
      ['{"id":{"k":[1]},"input":[5,6,7,8]}', { id: { k: [1] }, values: [5, 6, 7, 8] }],
      ['{"id":12345678901234567890,"input":[5,6,7,8]}', { id: Number('12345678901234567890'), values: [5, 6, 7, 8] }],
      ['{"input":[1,2,3,4],"id":"x"', { values: null }], // malformed: no closing brace
      ['{"input":[NaN,2,3,4]}', { values: null }],
      ['{"input":[Infinity,2,3,4]}', { values: null }],
      // Past float32's range: an infinity, as the ordinary parser has always fed it (Math.fround).
      ['{"input":[1e39,2,3,4]}', { values: [Infinity, 2, 3, 4] }],
      ['{"input":[1,2,3]}', { values: null }],
      ['[1,2,3,4]', { values: null }],
      ['{"id":"é","input":[-1E-7,+1,3,4]}', { values: null }], // "+1" is not JSON
      ['{"id":"é","input":[-1E-7,1,3,4]}', { id: 'é', values: f32([-1e-7, 1, 3, 4]) }],
    ];
    // Blank lines (spaces, CRs) are not rows.
    const text = rows.map(([l]) => l).join('\n') + '\n \r\n\n';
    await check(
      text,
      'jsonl',
      rows.map(([, w]) => w),
    );
    await check(
      rows.map(([l]) => `${l}\r`).join('\n'),
      'jsonl',
      rows.map(([, w]) => w),
    );
  });

  it('CSV: exponents, -0, spaces, CRLF and an id column as a direct run; a bad row is one error row', async () => {
    const header = 'a,id,b,c,d';
    const rows: [string, Want][] = [
      ['1e-3,r1,2.5E+2,-1.5e1,4', { id: 'r1', values: f32([1e-3, 250, -15, 4]) }],
      ['-0, 7 ,0.0, -0.0 ,1e-45', { id: ' 7 ', values: f32([-0, 0, -0, 1e-45]) }],
      ['0.1,,0.2,0.3,0.4', { id: '', values: f32([0.1, 0.2, 0.3, 0.4]) }],
      ['1,"q,x",2,3,4', { id: 'q,x', values: [1, 2, 3, 4] }],
      ['1,r5,2,x,4', { values: null }],
      ['1,r6,2,3', { values: null }],
      ['1e39,r7,2,3,4', { id: 'r7', values: [Infinity, 2, 3, 4] }],
      ['3.4028234e38,r8,1,2,3', { id: 'r8', values: f32([3.4028234e38, 1, 2, 3]) }],
    ];
    for (const nl of ['\n', '\r\n'])
      await check(
        rows.map(([l]) => l).join(nl) + nl,
        'csv',
        rows.map(([, w]) => w),
        header,
      );
  });
});

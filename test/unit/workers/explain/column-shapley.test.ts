// Column players against a real column-input model run by onnxruntime in the test process: the
// background a training run writes for such a model (a seeded sample of rows, per column, missing as
// null) read back as the model's inputs, and attributions by column that sum to f(x) - base, the same
// whatever the runs' byte bound.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { FsStore } from '../../../../core/storage/index.ts';
import { explainTarget } from '../../../../core/jobs/explain.ts';
import { loadColumnBackground } from '../../../../workers/explain/background.ts';
import { shapleyColumns, type EvaluateColumns } from '../../../../workers/explain/column-shapley.ts';
import { writeExplainArtifacts } from '../../../../workers/explain/training-artifacts.ts';
import { columnModel, columnProbs } from '../../../fixtures/column-model-linear.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'modelq-colshap-'));
const store = new FsStore(dir);
const sessions: ort.InferenceSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.release()));
  fs.rmSync(dir, { recursive: true, force: true });
});

const COLUMNS = explainTarget({
  name: 'cols',
  inputs: [
    { name: 'age', datatype: 'FP32', shape: [-1, 1] },
    { name: 'income', datatype: 'FP32', shape: [-1, 1] },
    { name: 'color', datatype: 'BYTES', shape: [-1, 1] },
  ],
  outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }],
}).columns!;

async function evaluator(): Promise<EvaluateColumns & { most: number }> {
  const s = await ort.InferenceSession.create(columnModel());
  sessions.push(s);
  const f = (async (feeds, n) => {
    f.most = Math.max(f.most, n);
    const t: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) t[k] = new ort.Tensor(v.type === 'float32' ? 'float32' : 'string', v.data as Float32Array | string[], v.dims);
    const out = (await s.run(t)).probabilities!;
    return { scores: out.data as Float32Array, classes: 3 };
  }) as EvaluateColumns & { most: number };
  f.most = 0;
  return f;
}

describe('shapley by column', () => {
  it('reads a training background back per column and sums to f(x) - base, the same in small runs', async () => {
    const n = 40;
    const columns = [
      { name: 'age', type: 'number' as const, values: Array.from({ length: n }, (_, i) => (i % 7 === 0 ? NaN : 20 + i)) },
      { name: 'income', type: 'number' as const, values: Array.from({ length: n }, (_, i) => (i % 5 === 0 ? null : i / 10)) },
      { name: 'color', type: 'category' as const, values: Array.from({ length: n }, (_, i) => ['red', 'blue', 'green', ''][i % 4]!) },
    ];
    const { background } = await writeExplainArtifacts(store, 'job1', {
      rows: n,
      numbers: columns.slice(0, 2).map((c) => ({ name: c.name, values: Float32Array.from(c.values as (number | null)[], (v) => v ?? NaN) })),
      strings: [{ name: 'color', kind: 'category', values: columns[2]!.values as string[] }],
      order: columns.map((c) => c.name),
      backgroundRows: 10,
      seed: 3,
    });
    expect(background).toMatchObject({ rows: 10, features: 3 });
    const bg = await loadColumnBackground(store, background!.key, COLUMNS);
    expect(bg.map((c) => c.length)).toEqual([10, 10, 10]);
    const ages = Array.from(bg[0] as Float32Array);
    for (const a of ages) expect(Number.isNaN(a) || (a >= 20 && a < 20 + n)).toBe(true);
    expect((bg[2] as string[]).every((c) => ['red', 'blue', 'green', ''].includes(c))).toBe(true);

    const x = [Float32Array.of(25, NaN), Float32Array.of(NaN, 6), ['blue', 'purple']];
    const ev = await evaluator();
    const whole = await shapleyColumns({ columns: COLUMNS, x, rows: 2, background: bg, samples: 4, seed: 1, runRows: 100_000 }, ev);
    for (let r = 0; r < 2; r++) {
      const sum = whole.attributions[r * 3]! + whole.attributions[r * 3 + 1]! + whole.attributions[r * 3 + 2]!;
      expect(Math.abs(sum - (whole.value[r]! - whole.base[r]!))).toBeLessThan(1e-4);
    }
    expect(whole.value[0]).toBeCloseTo(columnProbs(25, NaN, 'blue')[whole.classes[0]!]!, 5);
    const small = await evaluator();
    const cut = await shapleyColumns({ columns: COLUMNS, x, rows: 2, background: bg, samples: 4, seed: 1, runRows: 100_000, runBytes: 100 }, small);
    expect(small.most).toBeLessThanOrEqual(Math.max(2, 10)); // the rows and background runs; points in runs of a few
    expect(Array.from(cut.attributions)).toEqual(Array.from(whole.attributions));
  });

  it('defaults to one row of missing values without a background', async () => {
    const bg = await loadColumnBackground(store, undefined, COLUMNS);
    expect(bg.map((c) => Array.from(c as ArrayLike<number | string>))).toEqual([[NaN], [NaN], ['']]);
  });
});

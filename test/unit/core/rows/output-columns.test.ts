import { parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { isScalarOutput, outputColumnNames } from '../../../../core/rows/output-columns.ts';
import { jsonlToCsv } from '../../../../core/rows/to-csv.ts';
import { jsonlToParquet } from '../../../../core/rows/to-parquet.ts';
import type { TensorSpec } from '../../../../core/tensors.ts';

async function* lines(...ls: object[]): AsyncGenerator<Buffer> {
  yield Buffer.from(ls.map((l) => JSON.stringify(l)).join('\n') + '\n');
}
async function collect<T>(g: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of g) out.push(x);
  return out;
}

describe('output column names', () => {
  it('a one-value output is one column named as the output; per-class outputs are named by class; the rest by position', () => {
    expect(outputColumnNames('label', 1, ['no', 'yes'])).toEqual(['label']);
    expect(outputColumnNames('probabilities', 2, ['no', 'yes'])).toEqual(['probabilities_no', 'probabilities_yes']);
    expect(outputColumnNames('probabilities', 3, ['no', 'yes'])).toEqual(['probabilities_0', 'probabilities_1', 'probabilities_2']);
    expect(outputColumnNames('p', 2, ['a b', 'c,d'])).toEqual(['p_a_b', 'p_c_d']);
    // Classes that clean to the same name would make ambiguous columns: positions instead.
    expect(outputColumnNames('p', 2, ['a b', 'a,b'])).toEqual(['p_0', 'p_1']);
    expect(isScalarOutput({ name: 'label', datatype: 'BYTES', shape: [-1] })).toBe(true);
    expect(isScalarOutput({ name: 'value', datatype: 'FP32', shape: [-1, 1] })).toBe(true);
    expect(isScalarOutput({ name: 'p', datatype: 'FP32', shape: [-1, 2] })).toBe(false);
    expect(isScalarOutput({ name: 'x', datatype: 'FP32', shape: [-1, -1] })).toBe(false);
  });

  it('CSV: class-named probability columns for the model outputs only, a scalar label column', async () => {
    const src = lines({ row: 0, id: 'a', outputs: { label: ['yes'], probabilities: [0.25, 0.75], attributions: [0.1, 0.2] } });
    const csv = (
      await collect(jsonlToCsv(src, ['label', 'probabilities', 'attributions'], { values: ['no', 'yes'], outputs: ['label', 'probabilities'] }))
    ).join('');
    expect(csv.split('\n')[0]).toBe('row,id,label,probabilities_no,probabilities_yes,attributions_0,attributions_1');
    expect(csv.split('\n')[1]).toBe('0,a,yes,0.25,0.75,0.1,0.2');
  });

  it('Parquet: a one-value output is a scalar column, a per-class output a list', async () => {
    const outputs: TensorSpec[] = [
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
    ];
    const src = lines(
      { row: 0, id: 'a', outputs: { label: ['yes'], probabilities: [0.25, 0.75] } },
      { row: 1, id: 'b', outputs: { label: ['no'], probabilities: [0.5, 0.5] } },
    );
    const parts = await collect(jsonlToParquet(src, outputs));
    const file = Buffer.concat(parts);
    const rows = await parquetReadObjects({ file: file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer });
    expect(rows.map((r) => r.label)).toEqual(['yes', 'no']);
    expect(rows.map((r) => r.probabilities)).toEqual([
      [0.25, 0.75],
      [0.5, 0.5],
    ]);
  });
});

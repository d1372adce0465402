// Converts batch output lines (JSONL) to a Parquet file (the download's `?format=parquet`, a by-reference batch's Parquet parts), streamed row group
// by row group (hyparquet-writer): `row` (INT64), `id` (when the rows have ids: DOUBLE for numbers,
// STRING otherwise), `model_version` (INT32, a versioned batch's) and one column per model output: a scalar for a one-value output ([n] or [n, 1],
// core/rows/output-columns.ts), a list otherwise.
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';
type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];
import type { TensorSpec } from '../tensors.ts';
import { isScalarOutput } from './output-columns.ts';

/** Rows per row group of the output file. */
const GROUP_ROWS = 16384;

/** A ByteWriter whose bytes so far can be taken out, so the file never sits in memory whole. */
class DrainingWriter extends ByteWriter {
  take(): Uint8Array {
    const out = new Uint8Array(this.buffer.slice(0, this.index));
    this.index = 0;
    return out;
  }
}

interface Line {
  row: number;
  id?: unknown;
  model_version?: number;
  outputs: Record<string, unknown[]>;
}

export function schemaOf(outputs: TensorSpec[], id: 'DOUBLE' | 'STRING' | null, versioned = false): SchemaElement[] {
  const leaf = (o: TensorSpec): SchemaElement =>
    o.datatype === 'BYTES'
      ? { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' }
      : { name: 'element', type: o.datatype === 'FP32' || o.datatype === 'FP16' ? 'FLOAT' : 'DOUBLE', repetition_type: 'REQUIRED' };
  return [
    { name: 'root', num_children: 1 + (id ? 1 : 0) + (versioned ? 1 : 0) + outputs.length },
    { name: 'row', type: 'INT64', repetition_type: 'REQUIRED' },
    ...(id
      ? [
          id === 'STRING'
            ? ({ name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' } as SchemaElement)
            : ({ name: 'id', type: 'DOUBLE', repetition_type: 'OPTIONAL' } as SchemaElement),
        ]
      : []),
    ...(versioned ? [{ name: 'model_version', type: 'INT32', repetition_type: 'OPTIONAL' } as SchemaElement] : []),
    ...outputs.flatMap((o): SchemaElement[] =>
      isScalarOutput(o)
        ? [{ ...leaf(o), name: o.name, repetition_type: 'OPTIONAL' }]
        : [
            { name: o.name, repetition_type: 'OPTIONAL', num_children: 1, converted_type: 'LIST' },
            { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
            leaf(o),
          ],
    ),
  ];
}

export async function* jsonlToParquet(source: AsyncIterable<Buffer>, outputs: TensorSpec[], versioned = false): AsyncGenerator<Uint8Array> {
  const sink = new DrainingWriter();
  let writer: ParquetWriter | undefined;
  let idType: 'DOUBLE' | 'STRING' | null = null;
  let group: Line[] = [];
  const flush = async () => {
    if (!writer) {
      const first = group[0]?.id;
      idType = first === undefined ? null : typeof first === 'number' ? 'DOUBLE' : 'STRING';
      writer = new ParquetWriter({ writer: sink, schema: schemaOf(outputs, idType, versioned) });
    }
    if (!group.length) return;
    const ids =
      idType === null
        ? []
        : group.map((l) =>
            l.id === undefined || l.id === null
              ? null
              : idType === 'DOUBLE'
                ? typeof l.id === 'number'
                  ? l.id
                  : null
                : typeof l.id === 'string'
                  ? l.id
                  : JSON.stringify(l.id),
          );
    await writer.write({
      columnData: [
        { name: 'row', data: group.map((l) => BigInt(l.row)) },
        ...(idType ? [{ name: 'id', data: ids }] : []),
        ...(versioned ? [{ name: 'model_version', data: group.map((l) => l.model_version ?? null) }] : []),
        ...outputs.map((o) =>
          isScalarOutput(o)
            ? { name: o.name, data: group.map((l) => l.outputs[o.name]?.[0] ?? null) }
            : { name: o.name, data: group.map((l) => l.outputs[o.name] ?? null) },
        ),
      ],
      rowGroupSize: group.length,
    });
    group = [];
  };
  let rest = '';
  for await (const b of source) {
    const lines = (rest + b.toString('utf8')).split('\n');
    rest = lines.pop() ?? '';
    for (const l of lines) {
      if (!l) continue;
      group.push(JSON.parse(l) as Line);
      if (group.length >= GROUP_ROWS) {
        await flush();
        yield sink.take();
      }
    }
  }
  if (rest.trim()) group.push(JSON.parse(rest) as Line);
  await flush();
  await writer!.finish();
  yield sink.take();
}

// Converts batch output lines (JSONL) to CSV (the download's `?format=csv`, a by-reference batch's CSV parts): row, id, (a versioned batch:
// model_version), then each output's values in columns named by core/rows/output-columns.ts, the header taken from the first line.
import { outputColumnNames } from './output-columns.ts';

/** `classes` name the columns of the model's outputs (`classed`) that hold one value per class. */
export async function* jsonlToCsv(
  source: AsyncIterable<Buffer>,
  names: string[],
  classes?: { values: readonly (string | number)[]; outputs: readonly string[] },
  versioned = false,
): AsyncGenerator<string> {
  let rest = '';
  let header = false;
  const cell = (x: unknown) => {
    const s = x === undefined || x === null ? '' : typeof x === 'string' ? x : JSON.stringify(x);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  for await (const b of source) {
    const text = rest + b.toString('utf8');
    const lines = text.split('\n');
    rest = lines.pop() ?? '';
    let out = '';
    for (const l of lines) {
      if (!l) continue;
      const o = JSON.parse(l) as { row: number; id?: unknown; model_version?: number; outputs: Record<string, unknown[]> };
      if (!header) {
        out +=
          [
            'row',
            'id',
            ...(versioned ? ['model_version'] : []),
            ...names.flatMap((n) => outputColumnNames(n, (o.outputs[n] ?? []).length, classes?.outputs.includes(n) ? classes.values : undefined)),
          ]
            .map(cell)
            .join(',') + '\n';
        header = true;
      }
      out += [o.row, cell(o.id), ...(versioned ? [cell(o.model_version)] : []), ...names.flatMap((n) => o.outputs[n] ?? [])].join(',') + '\n';
    }
    if (out) yield out;
  }
}

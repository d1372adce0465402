// Converts batch output lines (JSONL) to CSV (the download's `?format=csv`, a by-reference batch's CSV parts): row, id, then each output's values
// as <name>_<i> columns, the header taken from the first line.
export async function* jsonlToCsv(source: AsyncIterable<Buffer>, names: string[]): AsyncGenerator<string> {
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
      const o = JSON.parse(l) as { row: number; id?: unknown; outputs: Record<string, unknown[]> };
      if (!header) {
        out += ['row', 'id', ...names.flatMap((n) => (o.outputs[n] ?? []).map((_, i) => `${n}_${i}`))].join(',') + '\n';
        header = true;
      }
      out += [o.row, cell(o.id), ...names.flatMap((n) => o.outputs[n] ?? [])].join(',') + '\n';
    }
    if (out) yield out;
  }
}

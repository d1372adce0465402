// How every command prints: `--json` writes the server's answer (or the command's result) as one
// JSON document on stdout, for scripts; otherwise short human lines and aligned tables.
import type { Command } from 'commander';

/** Whether --json was given (a global option: before or after the subcommand). */
export const wantsJson = (cmd: Command): boolean => Boolean(cmd.optsWithGlobals<{ json?: boolean }>().json);

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** A cell: numbers with at most 4 decimals, lists and objects shortened to fit a table. */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(4)));
  if (typeof v === 'string') return v.length > 60 ? `${v.slice(0, 57)}...` : v;
  if (Array.isArray(v)) {
    const shown = v.slice(0, 6).map(cell).join(' ');
    return `[${shown}${v.length > 6 ? ` ... ${v.length} values` : ''}]`;
  }
  return JSON.stringify(v).slice(0, 60);
}

/** Rows of objects as an aligned text table; `columns` default to the keys in order of first appearance. */
export function table(rows: Record<string, unknown>[], columns?: string[]): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const width = cols.map((c, j) => Math.max(c.length, ...cells.map((r) => r[j]!.length)));
  const line = (xs: string[]) =>
    xs
      .map((x, j) => x.padEnd(width[j]!))
      .join('  ')
      .trimEnd();
  return [line(cols), ...cells.map(line)].join('\n') + '\n';
}

/** An object's fields as `key: value` lines (nested objects flattened one level: `metrics.accuracy`). */
export function fields(o: Record<string, unknown>): string {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) out.push(`${k}.${k2}: ${cell(v2)}`);
    else out.push(`${k}: ${cell(v)}`);
  }
  return out.join('\n') + '\n';
}

/** One object per row with nested objects flattened (`probabilities.yes`), for tables of predictions. */
export function flatten(o: Record<string, unknown>, prefix = ''): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as Record<string, unknown>, `${prefix}${k}.`));
    else out[`${prefix}${k}`] = v;
  }
  return out;
}

// `modelq predict` and `modelq explain`: rows from a CSV or JSONL file, or one JSON row, scored
// online through KServe's :predict / :explain (which takes both kinds of model: objects keyed by
// column for a model with one input per column, arrays for a model with one input of rank 2),
// printed as a table (one line per row) or as JSON.
import fs from 'node:fs';
import type { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import { metadataList, type VersionRecord } from '../core/registry.ts';
import { CliError, sendJson, type Client } from './client.ts';
import { flatten, printJson, table, wantsJson } from './output.ts';
import { modelPath, resolveVersion } from './refs.ts';

type ClientOf = (cmd: Command) => Client;

/** Rows read at most from a file: online scoring is for small files (`modelq batch` takes large ones). */
export const MAX_ROWS = 10_000;
/** Rows per request. */
const PER_REQUEST = 1000;

/** Whether every input takes one value per row ([n], [n,1]): instances are objects keyed by input name. */
const isColumnModel = (v: VersionRecord) => v.inputs.every((i) => i.shape.length === 1 || (i.shape.length === 2 && i.shape[1] === 1));
const isFloat = (d: string) => d.startsWith('FP') || d.startsWith('INT') || d.startsWith('UINT');

/** A CSV's rows as objects (header = column names); numbers where a cell reads as one. */
function csvRows(text: string): Record<string, unknown>[] {
  const rows = parse(text, { columns: true, skip_empty_lines: true, bom: true, trim: true }) as Record<string, string>[];
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === '' ? null : Number.isFinite(Number(v)) ? Number(v) : v])));
}

function jsonlRows(text: string): unknown[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l, i) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        throw new CliError(`line ${i + 1} is not JSON: ${l.slice(0, 80)}`);
      }
    });
}

export function readRows(file: string | undefined, row: string | undefined): unknown[] {
  if (row !== undefined) {
    if (file) throw new CliError('give a FILE or --row, not both');
    return jsonlRows(row);
  }
  if (!file) throw new CliError('give a FILE (CSV or JSONL; - reads stdin) or --row \'{"col": 1, ...}\'');
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const csv = /\.csv$/i.test(file) || (!/\.(jsonl|ndjson|json)$/i.test(file) && !/^\s*[[{]/.test(text));
  const rows = csv ? csvRows(text) : jsonlRows(text);
  if (rows.length > MAX_ROWS)
    throw new CliError(`${file} has ${rows.length} rows; predict takes at most ${MAX_ROWS} (score large files with modelq batch submit)`);
  if (!rows.length) throw new CliError(`${file} has no rows`);
  return rows;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A row as the model's instance: a column model takes the object (extra keys such as an id are
 * ignored by the server); a one-input model takes the input's value (`{"input": [...]}`, as in batch
 * JSONL) or, from a CSV or an object without that key, the row's values of the version's features
 * (else of every column but `id`) in order.
 */
export function toInstance(v: VersionRecord, row: unknown): unknown {
  if (isColumnModel(v) || !isObject(row)) return row;
  const only = v.inputs[0]!;
  if (only.name in row) return row[only.name];
  if (isObject(row.inputs) && only.name in row.inputs) return row.inputs[only.name];
  // A trained version names its features: those columns, in that order (a target column is left out).
  const features = metadataList<string>(v, 'features');
  const values: [string, unknown][] =
    features && features.every((f) => f in row) ? features.map((f) => [f, row[f]]) : Object.entries(row).filter(([k]) => k !== 'id');
  return isFloat(only.datatype) ? values.map(([, x]) => (typeof x === 'number' ? x : x === null ? NaN : Number(x))) : values.map(([, x]) => x);
}

async function score(c: Client, v: VersionRecord, rows: unknown[], verb: 'predict' | 'explain', params: Record<string, unknown>) {
  const out: { predictions: Record<string, unknown>[]; explanations: Record<string, unknown>[] } = { predictions: [], explanations: [] };
  for (let i = 0; i < rows.length; i += PER_REQUEST) {
    const instances = rows.slice(i, i + PER_REQUEST).map((r) => toInstance(v, r));
    const body = { instances, ...(Object.keys(params).length ? { parameters: params } : {}) };
    const r = await sendJson<{ predictions: Record<string, unknown>[]; explanations?: Record<string, unknown>[] }>(
      c,
      'POST',
      `${modelPath(v.name)}/versions/${v.version}:${verb}`,
      body,
    );
    out.predictions.push(...r.predictions);
    out.explanations.push(...(r.explanations ?? []));
  }
  return out;
}

/** The table: the row number, the row's id when it has one, then the outputs (and attributions) flattened. */
function rowsTable(rows: unknown[], predictions: Record<string, unknown>[], explanations: Record<string, unknown>[]): string {
  return table(
    predictions.map((p, i) => {
      const r = rows[i];
      const id = isObject(r) && r.id !== undefined ? { id: r.id } : {};
      return { row: i, ...id, ...flatten(p), ...(explanations[i] ? flatten(explanations[i]!) : {}) };
    }),
  );
}

export function registerPredict(program: Command, client: ClientOf): void {
  for (const verb of ['predict', 'explain'] as const) {
    program
      .command(`${verb} <model> [file]`)
      .description(
        verb === 'predict'
          ? 'score the rows of a CSV or JSONL FILE (at most 10,000; - reads stdin) or one --row online and print a table'
          : 'like predict, with attributions per feature or column (Shapley values) for each row',
      )
      .option('--row <json>', 'one row as JSON: {"column": value, ...} or the input\'s values [..]')
      .option(
        '--param <key=value>',
        'a request parameter (explainSamples=4, device=gpu); repeatable',
        (kv: string, acc: Record<string, unknown>) => {
          const i = kv.indexOf('=');
          if (i <= 0) throw new CliError(`--param ${kv}: write key=value`);
          const raw = kv.slice(i + 1);
          return { ...acc, [kv.slice(0, i)]: Number.isFinite(Number(raw)) ? Number(raw) : raw };
        },
        {},
      )
      .action(async (model: string, file: string | undefined, o: { row?: string; param: Record<string, unknown> }, cmd: Command) => {
        const rows = readRows(file, o.row);
        const c = client(cmd);
        const v = await resolveVersion(c, model);
        const r = await score(c, v, rows, verb, o.param);
        if (wantsJson(cmd)) return printJson({ model: v.name, version: v.version, ...(verb === 'explain' ? r : { predictions: r.predictions }) });
        process.stdout.write(rowsTable(rows, r.predictions, r.explanations));
      });
  }
}

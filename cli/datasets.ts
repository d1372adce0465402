// `modelq datasets ...`: upload a CSV or JSONL file (streamed, with progress) and see what the
// platform read from it: rows, columns, types and statistics.
import fs from 'node:fs';
import type { Command } from 'commander';
import { CliError, type Client } from './client.ts';
import { printJson, table, wantsJson } from './output.ts';
import { uploadProgress } from './transfer-progress.ts';

type ClientOf = (cmd: Command) => Client;

interface Dataset {
  id: string;
  name: string;
  format: string;
  bytes: number;
  rows: number;
  columns: { name: string; type: string; [k: string]: unknown }[];
  createdAt: string;
}

function printDataset(d: Dataset): void {
  process.stdout.write(`${d.id}  ${d.name}  ${d.format}, ${d.rows} rows, ${d.columns.length} columns, ${d.bytes} bytes\n`);
  // Every column: its type and whatever statistics the profile has (missing, distinct, min, max, mean...).
  process.stdout.write(table(d.columns.map(({ name, type, ...stats }) => ({ column: name, type, ...stats }))));
}

export function registerDatasets(program: Command, client: ClientOf): void {
  const datasets = program.command('datasets').description('training data: upload CSV or JSONL files, show their columns');

  datasets
    .command('upload <file>')
    .description('upload FILE (CSV or JSONL, streamed, with progress on stderr) and print its id and columns')
    .option('--name <name>', 'a name to know it by (default: the file name)')
    .option('--format <format>', 'csv or jsonl (default: by the extension, else jsonl)')
    .action(async (file: string, o: { name?: string; format?: string }, cmd: Command) => {
      let size: number;
      try {
        size = fs.statSync(file).size;
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const format = o.format ?? (/\.csv$/i.test(file) ? 'csv' : 'jsonl');
      if (format !== 'csv' && format !== 'jsonl') throw new CliError(`--format must be csv or jsonl, not ${format}`);
      const name = o.name ?? file.replace(/^.*[\\/]/, '').replace(/\.[^.]+$/, '');
      const q = new URLSearchParams({ format, name });
      const progress = uploadProgress(`uploading ${file}`, size);
      let d: Dataset;
      try {
        d = await client(cmd).json<Dataset>('POST', `v1/datasets?${q}`, {
          body: fs.createReadStream(file).pipe(progress.counter),
          headers: { 'content-type': format === 'csv' ? 'text/csv' : 'application/x-ndjson', 'content-length': size },
        });
      } finally {
        progress.done();
      }
      if (wantsJson(cmd)) return printJson(d);
      printDataset(d);
    });

  datasets
    .command('show <id>')
    .description("a dataset's rows, columns, types and statistics")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const d = await client(cmd).json<Dataset>('GET', `v1/datasets/${encodeURIComponent(id)}`);
      if (wantsJson(cmd)) return printJson(d);
      printDataset(d);
    });

  datasets
    .command('list')
    .description('your datasets, newest first')
    .option('--limit <n>', 'how many', '50')
    .action(async (o: { limit: string }, cmd: Command) => {
      const r = await client(cmd).json<{ data: Dataset[]; total: number }>('GET', `v1/datasets?limit=${encodeURIComponent(o.limit)}`);
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(
        table(r.data.map((d) => ({ id: d.id, name: d.name, format: d.format, rows: d.rows, columns: d.columns.length, created: d.createdAt }))),
      );
    });
}

// The `modelq` command: argument parsing (commander) and exit codes. 0 success; 1 the batch or job
// failed or was cancelled; 2 a usage error, an error answered by the server, or no server. Each
// command group lives in a file of its own (batch here, models.ts, datasets.ts, jobs.ts, ...).
import fs from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { cancel, download, status, submit, type Format } from './batch.ts';
import { CliError, Client } from './client.ts';
import { registerDatasets } from './datasets.ts';
import { registerDrift } from './drift.ts';
import { registerJobs } from './jobs.ts';
import { registerKeys } from './keys.ts';
import { registerModels } from './models.ts';
import { wantsJson } from './output.ts';
import { registerPredict } from './predict.ts';
import { registerTrust } from './trust.ts';

const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

interface GlobalOptions {
  url: string;
  key?: string;
  apiKey?: string;
}

function chunkRows(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 100_000) throw new InvalidArgumentError('must be an integer between 1 and 100000');
  return n;
}

const client = (cmd: Command) => {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const key = g.key ?? g.apiKey;
  return new Client({ url: g.url, ...(key ? { apiKey: key } : {}) });
};

export function buildProgram(): Command {
  const program = new Command('modelq')
    .description('Command line of the modelq platform')
    .version(pkg.version)
    .addOption(
      new Option('--url <url>', 'producer URL')
        .env('MODELQ_URL')
        .default(`http://127.0.0.1:${process.env.MODELQ_PORT || 8080}`, 'http://127.0.0.1:${MODELQ_PORT:-8080}'),
    )
    .addOption(new Option('--key <key>', 'API key, sent as Authorization: Bearer <key>').env('MODELQ_API_KEY'))
    .addOption(new Option('--api-key <key>', 'the same as --key').hideHelp())
    .option('--json', 'print the result as JSON on stdout (for scripts)')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  const format = (dflt: string) => new Option('--format <format>', `file format (default: ${dflt})`).choices(['jsonl', 'csv', 'parquet']);
  const batch = program
    .command('batch')
    .alias('batches')
    .description('bulk scoring of JSONL, CSV or Parquet files (uploaded, or read by the platform from a URI)')
    .exitOverride();

  batch
    .command('submit [file]')
    .description('upload FILE (JSONL, CSV or Parquet, streamed; - reads stdin), or name --input-uri, and print the batch id')
    .requiredOption('-m, --model <ref>', 'model reference: name, name@alias or name@3')
    .addOption(format('csv for *.csv, parquet for *.parquet, jsonl for *.jsonl; else recognised by the server from the bytes'))
    .option('--chunk-rows <n>', "rows per chunk job (default: the server's MODELQ_BATCH_CHUNK_ROWS)", chunkRows)
    .option('--metadata <json>', 'JSON object of string values kept with the batch')
    .option('-w, --wait', 'follow the batch with a progress bar until it ends; exit 1 unless it completed')
    .option('--input-uri <uri>', 'by reference: the platform reads the input there (no upload)')
    .option('--output-uri <uri>', 'by reference: where the platform writes the output')
    .exitOverride()
    .action(
      async (
        file: string | undefined,
        o: { model: string; format?: Format; chunkRows?: number; metadata?: string; wait?: boolean; inputUri?: string; outputUri?: string },
        cmd: Command,
      ) => {
        process.exitCode = await submit(client(cmd), file, { ...o, json: wantsJson(cmd) });
      },
    );

  batch
    .command('status <id>')
    .description('print the batch as JSON')
    .exitOverride()
    .action(async (id: string, _o: unknown, cmd: Command) => {
      process.exitCode = await status(client(cmd), id);
    });

  batch
    .command('download <id>')
    .description('write the output (one row per input row, in order: JSONL lines, CSV rows or Parquet rows) or the error file')
    .option('-o, --output <file>', 'write to FILE instead of stdout')
    .option('--errors', 'the error file (failed rows) instead of the output')
    .addOption(format('jsonl'))
    .exitOverride()
    .action(async (id: string, o: { output?: string; errors?: boolean; format?: Format }, cmd: Command) => {
      process.exitCode = await download(client(cmd), id, { ...o, json: wantsJson(cmd) });
    });

  batch
    .command('cancel <id>')
    .description('cancel a queued or running batch')
    .exitOverride()
    .action(async (id: string, _o: unknown, cmd: Command) => {
      process.exitCode = await cancel(client(cmd), id, wantsJson(cmd));
    });

  registerModels(program, client);
  registerDatasets(program, client);
  registerJobs(program, client);
  registerPredict(program, client);
  registerDrift(program, client);
  registerKeys(program);
  registerTrust(program);
  // Usage errors of every subcommand end in main()'s catch (exit 2) rather than process.exit.
  const override = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(override);
  };
  override(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? 0);
  } catch (e) {
    // commander has printed its own message (or the help); --help and --version end with 0.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof CliError) {
      process.stderr.write(`modelq: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`modelq: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 2;
  }
}

process.exitCode = await main(process.argv);

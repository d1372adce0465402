// `modelq train`, `modelq compress` and `modelq jobs ...`: submit a job, follow it (a live curve of
// the training loss on a terminal, a line per epoch or step otherwise) and print its result.
import type { Command } from 'commander';
import { CliError, sendJson, type Client } from './client.ts';
import { fields, printJson, wantsJson } from './output.ts';

type ClientOf = (cmd: Command) => Client;

interface JobView {
  id: string;
  kind: string;
  state: 'queued' | 'active' | 'completed' | 'failed' | 'cancelled';
  progress: Record<string, unknown> | null;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
  lastError?: { code: string; message: string };
}

const FINAL = new Set(['completed', 'failed', 'cancelled']);
const SPARK = '▁▂▃▄▅▆▇█';

/** The last `width` values as a sparkline: the training curve in one line of a terminal. */
export function sparkline(values: number[], width = 30): string {
  const xs = values.slice(-width).filter(Number.isFinite);
  if (!xs.length) return '';
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return xs.map((x) => SPARK[hi === lo ? 0 : Math.round(((x - lo) / (hi - lo)) * (SPARK.length - 1))]).join('');
}

const num = (x: unknown) => (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(4)) : String(x));

/** One progress line: a training epoch (loss, validation loss and metric, the curve), or a compression step. */
export function progressLine(p: Record<string, unknown>, curve: boolean): string {
  if (typeof p.epoch === 'number') {
    const losses = Array.isArray(p.curve) ? (p.curve as { valLoss: number }[]).map((c) => c.valLoss) : [];
    const metric = typeof p.metric === 'string' ? p.metric : 'valMetric';
    const base = `epoch ${p.epoch}/${num(p.epochs)} loss ${num(p.loss)} valLoss ${num(p.valLoss)} ${metric} ${num(p.valMetric)}`;
    return curve && losses.length > 1 ? `${base} ${sparkline(losses)}` : base;
  }
  return Object.entries(p)
    .filter(([, v]) => typeof v !== 'object')
    .map(([k, v]) => `${k} ${num(v)}`)
    .join(' ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls the job until it ends, drawing its progress on stderr: on a terminal one line rewritten in
 * place with the validation-loss curve, else a line per change. Returns the final view.
 */
export async function followJob(c: Client, id: string, o: { pollMs?: number; stream?: NodeJS.WriteStream } = {}): Promise<JobView> {
  const stream = o.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY);
  let last = '';
  const onSigint = () => {
    if (tty) stream.write('\n');
    stream.write(`modelq: stopped following ${id}; the job goes on (modelq jobs cancel ${id} stops it)\n`);
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    for (;;) {
      const v = await c.json<JobView>('GET', `v1/jobs/${encodeURIComponent(id)}`);
      const line = v.progress ? progressLine(v.progress, tty) : v.state;
      if (line !== last) {
        stream.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
        last = line;
      }
      if (FINAL.has(v.state)) {
        if (tty && last) stream.write('\n');
        return v;
      }
      await sleep(o.pollMs ?? 500);
    }
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** Prints the job's end: the result's model and metrics, or the error; returns the exit code (0 completed, 1 otherwise). */
function printEnd(v: JobView, json: boolean): number {
  if (json) printJson(v);
  else if (v.state === 'completed' && v.result) {
    const r = v.result;
    const model = r.model as { name?: string; version?: number } | undefined;
    process.stdout.write(`${v.id} completed${model?.name ? `: ${model.name}@${model.version}` : ''}\n`);
    const { model: _m, sha256: _s, predictionsKey: _p, columns: _c, ...rest } = r;
    process.stdout.write(fields(rest));
  } else process.stdout.write(`${v.id} ${v.state}${v.error ? `: ${v.error.message}` : ''}\n`);
  if (v.state !== 'completed' && !json && v.error) process.stderr.write(`modelq: job ${v.id} ${v.state}: ${v.error.message}\n`);
  return v.state === 'completed' ? 0 : 1;
}

/** `--set key=value` pairs: numbers and JSON values as such, anything else as text. */
function collect(pair: string, acc: Record<string, unknown>): Record<string, unknown> {
  const i = pair.indexOf('=');
  if (i <= 0) throw new CliError(`--set ${pair}: write key=value`);
  const raw = pair.slice(i + 1);
  let value: unknown = raw;
  try {
    value = JSON.parse(raw);
  } catch {
    /* text */
  }
  return { ...acc, [pair.slice(0, i)]: value };
}

function parseObject(text: string | undefined, what: string): Record<string, unknown> {
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* below */
  }
  throw new CliError(`${what} must be a JSON object`);
}

async function submitAndMaybeFollow(c: Client, path: string, body: Record<string, unknown>, o: { follow?: boolean }, cmd: Command): Promise<number> {
  const accepted = await sendJson<{ id: string } & Record<string, unknown>>(c, 'POST', path, body);
  if (!o.follow) {
    if (wantsJson(cmd)) printJson(accepted);
    else process.stdout.write(`${accepted.id}\n`);
    return 0;
  }
  if (!wantsJson(cmd)) process.stdout.write(`${accepted.id}\n`);
  return printEnd(await followJob(c, accepted.id), wantsJson(cmd));
}

export function registerJobs(program: Command, client: ClientOf): void {
  program
    .command('train')
    .description('train a model on a dataset; --follow shows the curve per epoch and prints the metrics')
    .requiredOption('-d, --dataset <id>', 'dataset id (modelq datasets upload)')
    .requiredOption('-t, --target <column>', 'the column to predict')
    .requiredOption('-r, --register-as <name>', 'model name the result becomes a version of')
    .option('--set <key=value>', 'any other field of POST /v1/jobs/train (epochs=50, model={"type":"linear"}); repeatable', collect, {})
    .option('-f, --follow', 'follow the job until it ends; exit 1 unless it completed')
    .action(async (o: { dataset: string; target: string; registerAs: string; set: Record<string, unknown>; follow?: boolean }, cmd: Command) => {
      const body = { ...o.set, dataset: o.dataset, target: o.target, registerAs: o.registerAs };
      process.exitCode = await submitAndMaybeFollow(client(cmd), 'v1/jobs/train', body, o, cmd);
    });

  program
    .command('compress <model>')
    .description('compress a model version (quantize-int8, quantize-int8-static, fp16, prune, distill); --follow prints the report')
    .requiredOption('-m, --method <method>', 'quantize-int8 | quantize-int8-static | fp16 | prune | distill')
    .option('-d, --dataset <id>', 'dataset to measure accuracy on (required for distill)')
    .option('-r, --register-as <name>', 'model name of the result (default: the same)')
    .option('--options <json>', 'method options as a JSON object, e.g. {"hidden":[16]}')
    .option('--set <key=value>', 'any other field of POST /v1/jobs/compress; repeatable', collect, {})
    .option('-f, --follow', 'follow the job until it ends; exit 1 unless it completed')
    .action(
      async (
        model: string,
        o: { method: string; dataset?: string; registerAs?: string; options?: string; set: Record<string, unknown>; follow?: boolean },
        cmd: Command,
      ) => {
        const body = {
          ...o.set,
          model,
          method: o.method,
          ...(o.dataset ? { dataset: o.dataset } : {}),
          ...(o.registerAs ? { registerAs: o.registerAs } : {}),
          ...(o.options ? { options: parseObject(o.options, '--options') } : {}),
        };
        process.exitCode = await submitAndMaybeFollow(client(cmd), 'v1/jobs/compress', body, o, cmd);
      },
    );

  const jobs = program.command('jobs').description('training and compression jobs: show, follow, cancel');
  jobs
    .command('show <id>')
    .description("a job's state, progress and result")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const v = await client(cmd).json<JobView>('GET', `v1/jobs/${encodeURIComponent(id)}`);
      if (wantsJson(cmd)) return printJson(v);
      process.stdout.write(`${v.id} ${v.kind} ${v.state}\n`);
      if (v.progress) process.stdout.write(`${progressLine(v.progress, false)}\n`);
      if (v.result) process.stdout.write(fields(v.result));
      if (v.error ?? v.lastError) process.stdout.write(`error: ${(v.error ?? v.lastError)!.message}\n`);
    });
  jobs
    .command('follow <id>')
    .description('follow a job until it ends and print its result; exit 1 unless it completed')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      process.exitCode = printEnd(await followJob(client(cmd), id), wantsJson(cmd));
    });
  jobs
    .command('cancel <id>')
    .description('cancel a queued or running job')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const v = await client(cmd).json<JobView>('POST', `v1/jobs/${encodeURIComponent(id)}/cancel`);
      if (wantsJson(cmd)) return printJson(v);
      process.stdout.write(`${v.id} ${v.state}\n`);
    });
}

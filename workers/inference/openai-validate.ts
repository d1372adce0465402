// `openai-validate` on the `batch` queue: reads an OpenAI batch's input file once, checks every line
// (JSON, unique custom_id, POST, url equal to the endpoint, a known model) and either fails the batch
// with errors naming the lines or records the models and byte ranges and enqueues the chunk flow.
import { FlowProducer } from 'bullmq';
import type { Redis } from 'ioredis';
import { canReadModel } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { type BatchRecord, type LineError, OPENAI_JOBS, openaiKeys, OpenaiStore, type ResolvedModel } from '../../core/openai-batch.ts';
import { defaultJobOptions } from '../../core/queues.ts';
import { parseRef, type Registry } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { Config } from '../../core/config.ts';
import { JobDeadline } from '../job-deadline.ts';

/** Lines per `openai-lines` job at most. */
export const OPENAI_CHUNK_LINES = 1000;
/** Bytes per `openai-lines` job at most (a chunk's lines are read into memory whole): a long line starts a chunk of its own. */
export const OPENAI_CHUNK_BYTES = 32 * 1024 * 1024;
/** Validation stops collecting after this many errors. */
const MAX_ERRORS = 100;

export type LineRange = { start: number; end: number; lines: number };

/** Adds a line's byte range to the chunk ranges: a new chunk past `maxLines` lines or `maxBytes` bytes. */
export function addLine(ranges: LineRange[], l: { start: number; end: number }, maxLines = OPENAI_CHUNK_LINES, maxBytes = OPENAI_CHUNK_BYTES): void {
  const open = ranges.at(-1);
  if (!open || open.lines >= maxLines || l.end - open.start > maxBytes) ranges.push({ start: l.start, end: l.end, lines: 1 });
  else {
    open.end = l.end;
    open.lines++;
  }
}

export interface OpenaiDeps {
  store: ArtifactStore;
  openai: OpenaiStore;
  registry: Registry;
  redis: Redis;
  prefix: string;
  /** Longest line of an input file, newline included (MODELQ_OPENAI_MAX_LINE_BYTES). Default: 8 MiB. */
  maxLineBytes?: number;
  cfg?: Partial<Pick<Config, 'MODELQ_VALIDATE_TIMEOUT_MS'>>;
}

/** A line of the input file is longer than the limit: validation stops there. */
export class LineTooLongError extends Error {
  constructor(
    readonly line: number,
    readonly maxBytes: number,
  ) {
    super(`line ${line} is longer than ${maxBytes} bytes (MODELQ_OPENAI_MAX_LINE_BYTES)`);
  }
}

/** The model reference of a line: from the url for the inference protocol, from the body for embeddings. */
export function modelRefOf(url: string, body: unknown): string | null {
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?\/infer$/.exec(url);
  if (m) return m[2] ? `${m[1]}@${m[2]}` : m[1]!;
  const model = (body as { model?: unknown } | null)?.model;
  return typeof model === 'string' && model.length > 0 && model.length <= 200 ? model : null;
}

/**
 * Yields each line of a stream with its byte range [start, end) including the newline. The pieces
 * of a line are joined once, when it ends (joining at every read made a long line quadratic), and a
 * line past `maxBytes` throws LineTooLongError as soon as that many bytes are seen.
 */
export async function* linesOf(
  stream: AsyncIterable<Buffer>,
  maxBytes = Infinity,
  check: () => void = () => {},
): AsyncGenerator<{ text: string; start: number; end: number }> {
  let pieces: Buffer[] = [];
  let held = 0; // bytes of the current line in `pieces`
  let start = 0; // file offset of the current line
  let line = 1;
  const tooLong = () => new LineTooLongError(line, maxBytes);
  for await (const chunk of stream) {
    check(); // also within one long line
    let at = 0;
    let nl: number;
    while ((nl = chunk.indexOf(10, at)) >= 0) {
      const len = held + nl - at + 1;
      if (len > maxBytes) throw tooLong();
      const tail = chunk.subarray(at, nl);
      const text = held ? Buffer.concat([...pieces, tail]).toString('utf8') : tail.toString('utf8');
      yield { text, start, end: start + len };
      start += len;
      line++;
      pieces = [];
      held = 0;
      at = nl + 1;
    }
    if (at < chunk.length) {
      held += chunk.length - at;
      if (held > maxBytes) throw tooLong();
      pieces.push(Buffer.from(chunk.subarray(at)));
    }
  }
  if (held) yield { text: Buffer.concat(pieces).toString('utf8'), start, end: start + held };
}

let flows: FlowProducer | undefined;

export async function validateOpenaiBatch(batchId: string, d: OpenaiDeps): Promise<{ status: string }> {
  const b = await d.openai.batch(batchId);
  if (!b) throw new AppError('not_found', `batch ${batchId} no longer exists`);
  const status = b.fields.status;
  if (status === 'cancelling') {
    await d.openai.transition(batchId, 'cancelled', ['cancelling']);
    return { status: 'cancelled' };
  }
  if (status === 'in_progress' && b.record.chunks !== undefined) return enqueue(b.record, d); // a rerun after the flow add failed
  if (status !== 'validating') return { status: status ?? 'gone' };

  const deadline = new JobDeadline(d.cfg?.MODELQ_VALIDATE_TIMEOUT_MS ?? 600_000, 'MODELQ_VALIDATE_TIMEOUT_MS', "checking the batch's input file");
  const errors: LineError[] = [];
  const seen = new Set<string>();
  const models: Record<string, ResolvedModel> = {};
  const ranges: LineRange[] = [];
  let total = 0;
  let n = 0;
  const fail = (code: string, message: string, line: number | null, param: string | null = null) => {
    if (errors.length < MAX_ERRORS) errors.push({ code, message, param, line });
  };
  const maxLine = d.maxLineBytes ?? 8 * 1024 * 1024;
  try {
    for await (const l of linesOf(await d.store.read(openaiKeys.file(b.record.input_file_id)), maxLine, () => deadline.check())) {
      deadline.check();
      n++;
      if (!l.text.trim()) continue;
      total++;
      addLine(ranges, l);
      let v: { custom_id?: unknown; method?: unknown; url?: unknown; body?: unknown };
      try {
        v = JSON.parse(l.text);
      } catch {
        fail('invalid_json_line', `line ${n} is not valid JSON`, n);
        continue;
      }
      if (typeof v !== 'object' || v === null) {
        fail('invalid_json_line', `line ${n} is not a JSON object`, n);
        continue;
      }
      if (typeof v.custom_id !== 'string' || !v.custom_id)
        fail('missing_required_parameter', `line ${n}: custom_id must be a non-empty string`, n, 'custom_id');
      else if (seen.has(v.custom_id))
        fail('duplicate_custom_id', `line ${n}: custom_id "${v.custom_id.slice(0, 64)}" is used on an earlier line; custom_ids must be unique`, n, 'custom_id');
      else seen.add(v.custom_id);
      if (v.method !== 'POST') fail('invalid_method', `line ${n}: method must be "POST"`, n, 'method');
      if (v.url !== b.record.endpoint) {
        fail('invalid_url', `line ${n}: url ${JSON.stringify(v.url)?.slice(0, 100)} must equal the batch's endpoint ${b.record.endpoint}`, n, 'url');
        continue;
      }
      if (typeof v.body !== 'object' || v.body === null) {
        fail('invalid_request', `line ${n}: body must be a JSON object`, n, 'body');
        continue;
      }
      const ref = modelRefOf(v.url, v.body);
      if (!ref) {
        fail('invalid_request', `line ${n}: body.model must name a model (name, name@alias or name@3)`, n, 'body.model');
        continue;
      }
      if (!(ref in models)) {
        try {
          // Another tenant's private model is "not found", as on every other route.
          const access = await d.registry.access(parseRef(ref).name);
          if (!access || !canReadModel({ tenant: b.record.tenant, keyId: '', scopes: [] }, access))
            throw new AppError('not_found', `model "${parseRef(ref).name}" not found`);
          const m = await d.registry.resolve(ref);
          models[ref] = { name: m.name, version: m.version, sha256: m.sha256, inputs: m.inputs, outputs: m.outputs };
        } catch (e) {
          if (!(e instanceof AppError) || (e.code !== 'not_found' && e.code !== 'bad_request')) throw e;
          fail('model_not_found', `line ${n}: ${e.message}`, n, 'model');
        }
      }
    }
  } catch (e) {
    // Refused where it starts, without reading (or holding) the rest of the line.
    if (!(e instanceof LineTooLongError)) throw e;
    fail('line_too_long', e.message, e.line);
  }
  if (total === 0 && !errors.length) fail('empty_file', 'the input file has no request lines', null);
  if (errors.length) {
    await d.openai.setFields(batchId, { errors: JSON.stringify(errors) });
    await d.openai.transition(batchId, 'failed', ['validating', 'cancelling']);
    return { status: 'failed' };
  }
  const record: BatchRecord = { ...b.record, models, total, chunks: ranges.length };
  await d.openai.updateRecord(record);
  await d.openai.setFields(batchId, { ranges: JSON.stringify(ranges.map(({ start, end }) => ({ start, end }))) });
  if (!(await d.openai.transition(batchId, 'in_progress', ['validating']))) {
    await d.openai.transition(batchId, 'cancelled', ['cancelling']);
    return { status: 'cancelled' };
  }
  return enqueue(record, d);
}

/** One flow per batch: `openai-finalize` on `batch`, one `openai-lines` child per byte range on `score`. Fixed job ids: a rerun adds nothing twice. */
async function enqueue(record: BatchRecord, d: OpenaiDeps): Promise<{ status: string }> {
  const ranges = JSON.parse((await d.openai.batch(record.id))!.fields.ranges ?? '[]') as { start: number; end: number }[];
  flows ??= new FlowProducer({ connection: d.redis, prefix: d.prefix });
  await flows.add({
    name: OPENAI_JOBS.finalize,
    queueName: 'batch',
    data: { batchId: record.id },
    opts: { ...defaultJobOptions.batch, jobId: `${record.id}-finalize` },
    children: ranges.map((r, index) => ({
      name: OPENAI_JOBS.lines,
      queueName: 'score',
      data: { batchId: record.id, index, start: r.start, end: r.end },
      opts: { ...defaultJobOptions.score, jobId: `${record.id}-${index}`, failParentOnFailure: true },
    })),
  });
  return { status: 'in_progress' };
}

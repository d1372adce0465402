// `openai-validate` on the `batch` queue: reads an OpenAI batch's input file, checks every line
// (JSON, unique custom_id, POST, url equal to the endpoint, a known model) and either fails the batch
// with errors naming the lines, or maps each line to native rows (openai-map.ts; a body the model
// cannot take is that line's error), writes the line map, and hands the rows to native batches
// (openai-natives.ts), whose flows it enqueues under the OpenAI batch's finalizer.
import type { Redis } from 'ioredis';
import { canReadModel } from '../../core/auth.ts';
import { AppError } from '../../core/errors.ts';
import { batchKeys } from '../../core/jobs/batch.ts';
import { type BatchRecord, type LineError, openaiKeys, OpenaiStore, type ResolvedModel } from '../../core/openai-batch.ts';
import { parseRef, type Registry } from '../../core/registry.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import type { Config } from '../../core/config.ts';
import { JobDeadline } from '../job-deadline.ts';
import { type MapEntry, toNativeRows } from './openai-map.ts';
import { enqueueOpenaiFlow, type NativeDeps, writeNatives } from './openai-natives.ts';
import { LineTooLongError, linesOf, modelRefOf } from './openai-read.ts';

export { LineTooLongError, linesOf, modelRefOf };

// The line-range chunking below is no longer used (chunks are the native batches'): it is kept while
// test/unit/workers/inference/openai-validate.test.ts, which must pass unchanged, still tests it.
/** Lines per chunk at most. */
export const OPENAI_CHUNK_LINES = 1000;
/** Bytes per chunk at most. */
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

export interface OpenaiDeps extends NativeDeps {
  store: ArtifactStore;
  openai: OpenaiStore;
  registry: Registry;
  redis: Redis;
  prefix: string;
  /** Longest line of an input file, newline included (MODELQ_OPENAI_MAX_LINE_BYTES). Default: 8 MiB. */
  maxLineBytes?: number;
  cfg?: Partial<
    Pick<
      Config,
      | 'MODELQ_VALIDATE_TIMEOUT_MS'
      | 'MODELQ_BATCH_CHUNK_ROWS'
      | 'MODELQ_BATCH_CHUNK_BYTES'
      | 'MODELQ_BATCH_MAX_ROWS'
      | 'MODELQ_BATCH_MAX_CHUNKS'
      | 'MODELQ_BATCH_TTL'
    >
  >;
}

/** A line as validation parsed it. */
type Parsed = { custom_id?: unknown; method?: unknown; url?: unknown; body?: unknown };

/** The native batch (by `name@version`) of a resolved model. */
const modelKey = (m: ResolvedModel) => `${m.name}@${m.version}`;

export async function validateOpenaiBatch(batchId: string, d: OpenaiDeps): Promise<{ status: string }> {
  const b = await d.openai.batch(batchId);
  if (!b) throw new AppError('not_found', `batch ${batchId} no longer exists`);
  const status = b.fields.status;
  if (status === 'cancelling') {
    await d.openai.transition(batchId, 'cancelled', ['cancelling']);
    return { status: 'cancelled' };
  }
  if (status === 'in_progress' && b.record.natives !== undefined) return enqueueOpenaiFlow(b.record, d); // a rerun after the flow add failed
  if (status !== 'validating') return { status: status ?? 'gone' };

  const deadline = new JobDeadline(d.cfg?.MODELQ_VALIDATE_TIMEOUT_MS ?? 600_000, 'MODELQ_VALIDATE_TIMEOUT_MS', "checking the batch's input file");
  const errors: LineError[] = [];
  const seen = new Set<string>();
  const models: Record<string, ResolvedModel> = {};
  const groups: string[] = []; // model keys, in order of first use
  const groupRows: number[] = [];
  let total = 0;
  let refused = 0;
  let n = 0;
  const fail = (code: string, message: string, line: number | null, param: string | null = null) => {
    if (errors.length < MAX_ERRORS) errors.push({ code, message, param, line });
  };
  const maxLine = d.maxLineBytes ?? 8 * 1024 * 1024;

  /** Checks one line; returns its map entry once the file is known good so far. */
  const check = async (text: string): Promise<MapEntry | null> => {
    let v: Parsed;
    try {
      v = JSON.parse(text);
    } catch {
      fail('invalid_json_line', `line ${n} is not valid JSON`, n);
      return null;
    }
    if (typeof v !== 'object' || v === null) {
      fail('invalid_json_line', `line ${n} is not a JSON object`, n);
      return null;
    }
    if (typeof v.custom_id !== 'string' || !v.custom_id) fail('missing_required_parameter', `line ${n}: custom_id must be a non-empty string`, n, 'custom_id');
    else if (seen.has(v.custom_id))
      fail('duplicate_custom_id', `line ${n}: custom_id "${v.custom_id.slice(0, 64)}" is used on an earlier line; custom_ids must be unique`, n, 'custom_id');
    else seen.add(v.custom_id);
    if (v.method !== 'POST') fail('invalid_method', `line ${n}: method must be "POST"`, n, 'method');
    if (v.url !== b.record.endpoint) {
      fail('invalid_url', `line ${n}: url ${JSON.stringify(v.url)?.slice(0, 100)} must equal the batch's endpoint ${b.record.endpoint}`, n, 'url');
      return null;
    }
    if (typeof v.body !== 'object' || v.body === null) {
      fail('invalid_request', `line ${n}: body must be a JSON object`, n, 'body');
      return null;
    }
    const ref = modelRefOf(v.url, v.body);
    if (!ref) {
      fail('invalid_request', `line ${n}: body.model must name a model (name, name@alias or name@3)`, n, 'body.model');
      return null;
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
        return null;
      }
    }
    if (errors.length || typeof v.custom_id !== 'string') return null; // the batch fails: no map needed
    const m = models[ref]!;
    const mapped = toNativeRows({ custom_id: v.custom_id, url: v.url, body: v.body as Record<string, unknown> }, m);
    if ('error' in mapped) {
      refused++;
      return { c: v.custom_id, e: { code: 'bad_request', message: mapped.error } };
    }
    let g = groups.indexOf(modelKey(m));
    if (g < 0) g = groups.push(modelKey(m)) - 1;
    groupRows[g] = (groupRows[g] ?? 0) + mapped.rows.length;
    return { ...mapped.entry, g, k: mapped.rows.length };
  };

  // One read: the lines are checked and the line map written as they go.
  async function* lineMap(): AsyncGenerator<Buffer> {
    try {
      for await (const l of linesOf(await d.store.read(openaiKeys.file(b!.record.input_file_id)), maxLine, () => deadline.check())) {
        deadline.check();
        n++;
        if (!l.text.trim()) continue;
        total++;
        const entry = await check(l.text);
        if (entry) yield Buffer.from(`${JSON.stringify(entry)}\n`);
      }
    } catch (e) {
      // Refused where it starts, without reading (or holding) the rest of the line.
      if (!(e instanceof LineTooLongError)) throw e;
      fail('line_too_long', e.message, e.line);
    }
  }
  await d.store.put(openaiKeys.lineMap(batchId), lineMap());
  if (total === 0 && !errors.length) fail('empty_file', 'the input file has no request lines', null);
  const failBatch = async () => {
    await d.store.delete(openaiKeys.lineMap(batchId)).catch(() => {});
    await d.openai.setFields(batchId, { errors: JSON.stringify(errors) });
    await d.openai.transition(batchId, 'failed', ['validating', 'cancelling']);
    return { status: 'failed' };
  };
  if (errors.length) return failBatch();

  const record: BatchRecord = {
    ...b.record,
    models,
    total,
    refused,
    natives: groups.map((model, g) => ({ id: '', model, rows: groupRows[g] ?? 0 })),
  };
  // Past its window already: no row is scored, every line ends expired.
  const expired = Date.now() / 1000 > record.expires_at;
  try {
    await writeNatives(record, expired, d);
  } catch (e) {
    if (!(e instanceof AppError) || e.code !== 'bad_request') throw e;
    fail('batch_too_large', e.message, null);
    return failBatch();
  }
  await d.openai.updateRecord(record);
  if (!(await d.openai.transition(batchId, 'in_progress', ['validating']))) {
    // Cancelled meanwhile: the native inputs written go, no native batch was created.
    for (const x of record.natives ?? []) if (x.id) await d.store.deletePrefix(batchKeys.dir(x.id)).catch(() => {});
    await d.openai.transition(batchId, 'cancelled', ['cancelling']);
    return { status: 'cancelled' };
  }
  return enqueueOpenaiFlow(record, d);
}

// `openai-lines` on the `score` queue: one chunk of an OpenAI batch. Each line runs through the
// engine (inference-protocol bodies, or /v1/embeddings bodies) and becomes an output or error line
// in OpenAI's shapes; the chunk's two parts are written whole under deterministic keys.
import { randomBytes } from 'node:crypto';
import { AppError } from '../../core/errors.ts';
import { type BatchRecord, openaiKeys, type ResolvedModel } from '../../core/openai-batch.ts';
import { elementCount, flattenData, fromRaw, toRaw, type RawTensor, type TypedArray } from '../../core/tensors.ts';
import type { Engine } from '../engine/engine.ts';
import { localModelPath } from '../model-cache.ts';
import { modelRefOf, type OpenaiDeps } from './openai-validate.ts';

export interface LinesDeps extends OpenaiDeps {
  engine: Engine;
  cacheDir?: string;
}

/** Lines in flight at once, so the engine's threads stay busy. */
const PARALLEL_LINES = 32;

const hex = () => randomBytes(12).toString('hex');
const bad = (msg: string) => new AppError('bad_request', msg);

/** An inference-protocol body -> engine feeds, checked against the model's signature. */
function inferFeeds(body: Record<string, unknown>, m: ResolvedModel): { feeds: Record<string, RawTensor>; outputs?: string[] } {
  const inputs = Array.isArray(body.inputs) ? (body.inputs as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown }[]) : null;
  if (!inputs) throw bad('body.inputs must be an array');
  const feeds: Record<string, RawTensor> = {};
  for (const spec of m.inputs) {
    const t = inputs.find((i) => i?.name === spec.name);
    if (!t) throw bad(`missing input "${spec.name}"`);
    if (t.datatype !== spec.datatype) throw bad(`input "${spec.name}": datatype ${String(t.datatype)} does not match the model's ${spec.datatype}`);
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((x) => Number.isInteger(x) && x >= 0) || shape.length !== spec.shape.length) {
      throw bad(`input "${spec.name}": shape must be ${spec.shape.length} non-negative integers like [${spec.shape.join(',')}]`);
    }
    const dim = spec.shape.findIndex((want, i) => want >= 0 && shape[i] !== want);
    if (dim >= 0) throw bad(`input "${spec.name}": shape [${shape.join(',')}] does not match the model's [${spec.shape.join(',')}] at dimension ${dim}`);
    const flat = flattenData(t.data, shape as number[], spec.datatype, `input "${spec.name}"`);
    if ('error' in flat) throw bad(flat.error);
    feeds[spec.name] = toRaw({ name: spec.name, datatype: spec.datatype, shape: shape as number[], data: flat.data });
  }
  const outputs = Array.isArray(body.outputs) ? (body.outputs as { name?: unknown }[]).map((o) => String(o?.name)) : undefined;
  return outputs ? { feeds, outputs } : { feeds };
}

/** An embeddings `input` (a row of numbers, rows, or strings for text models) -> feeds of the first input. */
function embeddingFeeds(input: unknown, m: ResolvedModel): { feeds: Record<string, RawTensor>; rows: number } {
  const spec = m.inputs[0]!;
  if (m.inputs.length !== 1) throw bad(`model ${m.name} takes ${m.inputs.length} inputs; /v1/embeddings needs a model with one`);
  if (spec.datatype === 'BYTES') {
    const texts = typeof input === 'string' ? [input] : Array.isArray(input) && input.every((x) => typeof x === 'string') ? (input as string[]) : null;
    if (!texts || !texts.length) throw bad('input must be a string or a non-empty list of strings for a text model');
    return { feeds: { [spec.name]: { type: 'string', dims: spec.shape.length === 2 ? [texts.length, 1] : [texts.length], data: texts } }, rows: texts.length };
  }
  const rows = Array.isArray(input) && input.length && Array.isArray(input[0]) ? (input as unknown[][]) : Array.isArray(input) ? [input] : null;
  if (!rows || !rows.length) throw bad('input must be a list of numbers or a list of rows');
  const width = rows[0]!.length;
  const shape = [rows.length, width];
  if (spec.shape.length !== 2 || (spec.shape[1]! >= 0 && spec.shape[1] !== width))
    throw bad(`input rows have ${width} values; model ${m.name} takes [${spec.shape.join(',')}]`);
  const flat = flattenData(rows, shape, spec.datatype, 'input');
  if ('error' in flat) throw bad(flat.error);
  return { feeds: { [spec.name]: toRaw({ name: spec.name, datatype: spec.datatype, shape, data: flat.data }) }, rows: rows.length };
}

async function runLine(line: { url: string; body: Record<string, unknown> }, record: BatchRecord, d: LinesDeps): Promise<unknown> {
  const m = record.models?.[modelRefOf(line.url, line.body) ?? ''];
  if (!m) throw new AppError('not_found', 'the model of this line was not resolved at validation');
  const handle = { sha256: m.sha256, path: await localModelPath(d.store, m.sha256, d.cacheDir), label: `${m.name}@${m.version}` };
  if (line.url === '/v1/embeddings') {
    const { feeds, rows } = embeddingFeeds(line.body.input, m);
    const out = await d.engine.run(handle, feeds, { outputs: [m.outputs[0]!.name], rows });
    const t = out[m.outputs[0]!.name]!;
    const per = elementCount(t.dims.slice(1));
    const data = t.data as TypedArray;
    return {
      object: 'list',
      model: String(line.body.model),
      usage: { prompt_tokens: 0, total_tokens: 0 },
      data: Array.from({ length: rows }, (_, i) => ({
        object: 'embedding',
        index: i,
        embedding: Array.from(data.slice(i * per, (i + 1) * per) as ArrayLike<number>, Number),
      })),
    };
  }
  const { feeds, outputs } = inferFeeds(line.body, m);
  const out = await d.engine.run(handle, feeds, outputs ? { outputs } : {});
  return {
    model_name: m.name,
    model_version: String(m.version),
    ...(typeof line.body.id === 'string' ? { id: line.body.id } : {}),
    outputs: Object.entries(out).map(([name, t]) => fromRaw(name, t)),
  };
}

const EXPIRED = { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' };

/** Scores one chunk; returns its counts. Output and error parts are replaced whole. */
export async function processOpenaiLines(chunk: { batchId: string; index: number; start: number; end: number }, record: BatchRecord, d: LinesDeps) {
  const parts: Buffer[] = [];
  for await (const p of await d.store.read(openaiKeys.file(record.input_file_id), { start: chunk.start, end: chunk.end })) parts.push(p as Buffer);
  const lines = Buffer.concat(parts)
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim());
  const results: { ok: boolean; text: string; expired?: boolean }[] = new Array(lines.length);
  const one = async (i: number) => {
    const v = JSON.parse(lines[i]!) as { custom_id: string; url: string; body: Record<string, unknown> };
    const id = `batch_req_${hex()}`;
    if (Date.now() / 1000 > record.expires_at) {
      results[i] = { ok: false, expired: true, text: JSON.stringify({ id, custom_id: v.custom_id, response: null, error: EXPIRED }) };
      return;
    }
    try {
      const body = await runLine(v, record, d);
      results[i] = { ok: true, text: JSON.stringify({ id, custom_id: v.custom_id, response: { status_code: 200, request_id: hex(), body }, error: null }) };
    } catch (e) {
      // Bad data is the line's fault; anything else (storage, a model that does not load) fails the chunk, to be retried.
      if (!(e instanceof AppError) || e.retryable || (e.code !== 'bad_request' && e.code !== 'not_found')) throw e;
      const status = e.httpStatus;
      const error = { message: e.message, type: 'invalid_request_error', param: null, code: e.code };
      results[i] = {
        ok: false,
        text: JSON.stringify({ id, custom_id: v.custom_id, response: { status_code: status, request_id: hex(), body: { error } }, error: null }),
      };
    }
  };
  for (let at = 0; at < lines.length; at += PARALLEL_LINES) {
    await Promise.all(Array.from({ length: Math.min(PARALLEL_LINES, lines.length - at) }, (_, k) => one(at + k)));
  }
  const out = results.filter((r) => r.ok).map((r) => r.text);
  const err = results.filter((r) => !r.ok).map((r) => r.text);
  await d.store.put(openaiKeys.output(chunk.batchId, chunk.index), out.length ? `${out.join('\n')}\n` : '');
  await d.store.put(openaiKeys.errors(chunk.batchId, chunk.index), err.length ? `${err.join('\n')}\n` : '');
  const expired = results.filter((r) => r.expired).length;
  return { completed: out.length, failed: err.length - expired, expired };
}

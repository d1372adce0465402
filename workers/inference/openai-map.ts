// The OpenAI batch adapter's line mapping, both ways. In: an OpenAI request line (an inference-protocol
// body, or a /v1/embeddings body) becomes native JSONL rows, one per row of its batch dimension, each
// with the line's custom_id as its id, or is refused with the reason a direct request would get. Out:
// the native output and error rows of a line become its OpenAI output or error line.
import { randomBytes } from 'node:crypto';
import type { ResolvedModel } from '../../core/openai-batch.ts';
import { elementCount, flattenData, type TensorSpec } from '../../core/tensors.ts';

/** A line of the line map: the native batch (`g`) and row count (`k`) that carry it, or its own error (`e`). */
export type MapEntry = ScoredEntry | RefusedEntry;
export interface ScoredEntry {
  /** custom_id */
  c: string;
  /** Index of its native batch in the record's `natives`. */
  g: number;
  /** Its rows there (the batch dimension of its request), consecutive. */
  k: number;
  /** The request's own `id` (inference protocol), echoed. */
  b?: string;
  /** The outputs it asked for (inference protocol), else all. */
  o?: string[];
  /** The model as an embeddings line named it, echoed. */
  m?: string;
}
export interface RefusedEntry {
  c: string;
  e: { code: string; message: string };
}

export type LineRequest = { custom_id: string; url: string; body: Record<string, unknown> };

/** What a line becomes: its native rows (JSON text, without newlines) and what its answer needs, or why it is refused. */
export type Mapped = { rows: string[]; entry: Omit<ScoredEntry, 'g' | 'k'> } | { error: string };

/** A flat slice nested to `dims` (a bare value for none), as a native JSONL row takes a value. */
function nest(flat: readonly unknown[], dims: readonly number[]): unknown {
  if (dims.length === 0) return flat[0];
  if (dims.length === 1) return flat;
  const per = elementCount(dims.slice(1));
  return Array.from({ length: dims[0]! }, (_, i) => nest(flat.slice(i * per, (i + 1) * per), dims.slice(1)));
}

/** One native row: the custom_id as id, then each input's value. */
const rowText = (id: string, values: [string, unknown][]) => JSON.stringify(Object.fromEntries([['id', id], ...values]));

/** An inference-protocol body -> rows, checked against the model's signature as a direct request is. */
function inferRows(custom: string, body: Record<string, unknown>, m: ResolvedModel): Mapped {
  const inputs = Array.isArray(body.inputs) ? (body.inputs as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown }[]) : null;
  if (!inputs) return { error: 'body.inputs must be an array' };
  let n: number | undefined;
  const cols: { spec: TensorSpec; rest: number[]; per: number; flat: unknown[] }[] = [];
  for (const spec of m.inputs) {
    const t = inputs.find((i) => i?.name === spec.name);
    if (!t) return { error: `missing input "${spec.name}"` };
    if (t.datatype !== spec.datatype) return { error: `input "${spec.name}": datatype ${String(t.datatype)} does not match the model's ${spec.datatype}` };
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((x) => Number.isInteger(x) && x >= 0) || shape.length !== spec.shape.length || !shape.length)
      return { error: `input "${spec.name}": shape must be ${spec.shape.length} non-negative integers like [${spec.shape.join(',')}]` };
    const dim = spec.shape.findIndex((want, i) => want >= 0 && shape[i] !== want);
    if (dim >= 0) return { error: `input "${spec.name}": shape [${shape.join(',')}] does not match the model's [${spec.shape.join(',')}] at dimension ${dim}` };
    if (n !== undefined && shape[0] !== n) return { error: `input "${spec.name}": ${String(shape[0])} rows, another input has ${n}` };
    n = shape[0] as number;
    const flat = flattenData(t.data, shape as number[], spec.datatype, `input "${spec.name}"`);
    if ('error' in flat) return { error: flat.error };
    const rest = (shape as number[]).slice(1);
    cols.push({ spec, rest, per: elementCount(rest), flat: flat.data });
  }
  let outputs: string[] | undefined;
  if (body.outputs !== undefined) {
    if (!Array.isArray(body.outputs)) return { error: 'body.outputs must be an array of { name }' };
    outputs = (body.outputs as { name?: unknown }[]).map((o) => String(o?.name));
    const unknown = outputs.find((o) => !m.outputs.some((s) => s.name === o));
    if (unknown !== undefined) return { error: `unknown output "${unknown.slice(0, 100)}"; model ${m.name} has ${m.outputs.map((o) => o.name).join(', ')}` };
  }
  const rows = Array.from({ length: n ?? 0 }, (_, j) =>
    rowText(
      custom,
      cols.map((c) => [c.spec.name, nest(c.flat.slice(j * c.per, (j + 1) * c.per), c.rest)]),
    ),
  );
  return { rows, entry: { c: custom, ...(typeof body.id === 'string' ? { b: body.id } : {}), ...(outputs ? { o: outputs } : {}) } };
}

/** An embeddings `input` (a row of numbers, rows, or strings for a text model) -> rows of the model's one input. */
function embeddingRows(custom: string, body: Record<string, unknown>, m: ResolvedModel): Mapped {
  const spec = m.inputs[0]!;
  const entry = { c: custom, m: String(body.model) };
  if (m.inputs.length !== 1) return { error: `model ${m.name} takes ${m.inputs.length} inputs; /v1/embeddings needs a model with one` };
  const input = body.input;
  if (spec.datatype === 'BYTES') {
    const texts = typeof input === 'string' ? [input] : Array.isArray(input) && input.every((x) => typeof x === 'string') ? (input as string[]) : null;
    if (!texts || !texts.length) return { error: 'input must be a string or a non-empty list of strings for a text model' };
    return { rows: texts.map((t) => rowText(custom, [[spec.name, spec.shape.length === 2 ? [t] : t]])), entry };
  }
  const list = Array.isArray(input) && input.length && Array.isArray(input[0]) ? (input as unknown[][]) : Array.isArray(input) ? [input] : null;
  if (!list || !list.length) return { error: 'input must be a list of numbers or a list of rows' };
  const width = list[0]!.length;
  if (spec.shape.length !== 2 || (spec.shape[1]! >= 0 && spec.shape[1] !== width))
    return { error: `input rows have ${width} values; model ${m.name} takes [${spec.shape.join(',')}]` };
  const flat = flattenData(list, [list.length, width], spec.datatype, 'input');
  if ('error' in flat) return { error: flat.error };
  return { rows: list.map((_, j) => rowText(custom, [[spec.name, flat.data.slice(j * width, (j + 1) * width)]])), entry };
}

/** A validated request line -> its native rows, or why it is refused. */
export function toNativeRows(line: LineRequest, m: ResolvedModel): Mapped {
  return line.url === '/v1/embeddings' ? embeddingRows(line.custom_id, line.body, m) : inferRows(line.custom_id, line.body, m);
}

/** A native output row ({ row, id, outputs }) or error row ({ row, id, error }). */
export type NativeRow = { row: number; outputs?: Record<string, unknown[]>; error?: { code: string; message: string } };

const hex = () => randomBytes(12).toString('hex');
const EXPIRED = { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' };

/** An output row's values of one output, as the inference protocol answers them (BOOL as booleans). */
function values(spec: TensorSpec | undefined, v: unknown[]): unknown[] {
  return spec?.datatype === 'BOOL' ? v.map((x) => x !== 0 && x !== false && x !== null) : v;
}

/** The answer body of a line all of whose rows were scored. */
function responseBody(e: ScoredEntry, rows: NativeRow[], m: ResolvedModel, url: string): unknown {
  if (url === '/v1/embeddings') {
    const first = m.outputs[0]!;
    return {
      object: 'list',
      model: e.m,
      usage: { prompt_tokens: 0, total_tokens: 0 },
      data: rows.map((r, i) => ({ object: 'embedding', index: i, embedding: values(first, r.outputs?.[first.name] ?? []) })),
    };
  }
  const names = e.o ?? m.outputs.map((o) => o.name);
  return {
    model_name: m.name,
    model_version: String(m.version),
    ...(e.b !== undefined ? { id: e.b } : {}),
    outputs: names.map((name) => {
      const spec = m.outputs.find((o) => o.name === name);
      const per = rows[0]?.outputs?.[name]?.length ?? 0;
      const rest = spec?.shape.slice(1) ?? [];
      // The row's dimensions from the signature where it fixes them, else its values' count.
      const dims = !rows.length ? rest.map((d) => Math.max(d, 0)) : rest.every((d) => d >= 0) && elementCount(rest) === per ? rest : [per];
      return { name, datatype: spec?.datatype ?? 'FP32', shape: [rows.length, ...dims], data: rows.flatMap((r) => values(spec, r.outputs?.[name] ?? [])) };
    }),
  };
}

/** What a line is at the end: its OpenAI line and which file it goes to (null: not run, and nothing to write). */
export type Outcome = { kind: 'completed' | 'failed' | 'expired'; text: string } | null;

/**
 * A line's OpenAI output or error line, from its native rows (undefined: not scored, because the
 * batch was cancelled or its window ended). `unscored` says what a line that was not run becomes.
 */
export function openaiLine(e: MapEntry, rows: (NativeRow | undefined)[], m: ResolvedModel | undefined, url: string, unscored: 'expired' | 'omitted'): Outcome {
  const id = `batch_req_${hex()}`;
  const refused = (error: { code: string; message: string }) => ({
    kind: 'failed' as const,
    text: JSON.stringify({
      id,
      custom_id: e.c,
      response: {
        status_code: 400,
        request_id: hex(),
        body: { error: { message: error.message, type: 'invalid_request_error', param: null, code: error.code } },
      },
      error: null,
    }),
  });
  if ('e' in e) return refused(e.e);
  const failedAt = rows.findIndex((r) => r?.error);
  if (failedAt >= 0) {
    const err = rows[failedAt]!.error!;
    return refused(rows.length > 1 ? { code: err.code, message: `row ${failedAt}: ${err.message}` } : err);
  }
  if (rows.some((r) => !r) || !m) {
    if (unscored === 'omitted') return null;
    return { kind: 'expired', text: JSON.stringify({ id, custom_id: e.c, response: null, error: EXPIRED }) };
  }
  const body = responseBody(e, rows as NativeRow[], m, url);
  return { kind: 'completed', text: JSON.stringify({ id, custom_id: e.c, response: { status_code: 200, request_id: hex(), body }, error: null }) };
}

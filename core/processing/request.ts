// Requests to a model with declared processing: one file per row for each processed input, as a
// BYTES tensor whose elements are the files in base64 (JSON cannot carry raw bytes; {"b64": "..."}
// is taken too). The producer only checks the form and counts; the worker decodes the files.
import { badRequest } from '../errors.ts';
import type { InferRequest } from '../jobs/infer.ts';
import type { Tensor, TensorSpec } from '../tensors.ts';
import type { Processing } from './spec.ts';
import { POST_OUTPUTS } from './spec.ts';
import { fileInputs, pipelineTextInputs, type Pipeline } from './pipeline.ts';

/** In a batch row of files, the key a file that could not become a row (a ZIP entry over the row limit) carries instead: an error row naming it. */
export const ROW_ERROR_KEY = '$error';

/**
 * A door that receives files as raw bytes (gRPC's BYTES elements) attaches them to the input's data
 * array under this key, beside their text decoding: a file step takes the bytes, a text step the text.
 */
export const RAW_FILES = Symbol.for('modelq.processing.rawFiles');

/** The raw bytes a door attached to each input of a request body (before it is parsed), by input name. */
export function rawFilesOf(json: unknown): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  const inputs = (json as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs)) return out;
  for (const i of inputs as { name?: unknown; data?: unknown }[]) {
    const raw = Array.isArray(i?.data) ? (i.data as unknown as Record<symbol, unknown>)[RAW_FILES] : undefined;
    if (typeof i?.name === 'string' && Array.isArray(raw)) out.set(i.name, raw as Buffer[]);
  }
  return out;
}

const B64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** A file as the request gives it (a base64 string or {"b64"}) -> its base64 text, or an error message. */
export function fileB64(v: unknown): string | { error: string } {
  const s =
    typeof v === 'string' ? v : typeof v === 'object' && v !== null && typeof (v as { b64?: unknown }).b64 === 'string' ? (v as { b64: string }).b64 : null;
  if (s === null) return { error: 'must be a file in base64 (a string or {"b64": "..."})' };
  if (!s.length) return { error: 'is an empty file' };
  if (!B64.test(s)) return { error: 'is not base64' };
  return s;
}

interface RequestInput {
  name: string;
  datatype: string;
  shape: number[];
  data: unknown;
}

/**
 * Checks a request to a processed model (or a pipeline of files): every file input given once, BYTES [n]
 * of files (texts for a text step), the same n for all.
 */
export function checkFileRequest(
  body: { inputs: RequestInput[]; outputs?: { name: string }[] },
  model: { name: string; outputs: TensorSpec[]; processing?: Processing | undefined; pipeline?: Pipeline | undefined },
  raw: Map<string, Buffer[]> = new Map(),
): InferRequest {
  const texts = model.pipeline ? pipelineTextInputs(model.pipeline) : new Set<string>();
  const steps: { input: string; type?: string }[] = model.processing
    ? model.processing.inputs
    : fileInputs(model)!.map((input) => ({ input, ...(texts.has(input) ? { type: 'text' } : {}) }));
  const inputs: Tensor[] = [];
  let rows: number | undefined;
  for (const [i, inp] of body.inputs.entries()) {
    const label = `inputs[${i}] "${inp.name}"`;
    const step = steps.find((s) => s.input === inp.name);
    if (!step) throw badRequest(`unknown input "${inp.name}"; model ${model.name} takes files for ${steps.map((s) => `"${s.input}"`).join(', ')}`);
    if (inputs.some((t) => t.name === inp.name)) throw badRequest(`input "${inp.name}" is given twice`);
    const what = step.type === 'text' ? 'texts come as BYTES' : 'files come as BYTES (base64 in JSON)';
    if (inp.datatype !== 'BYTES') throw badRequest(`${label}: ${what}, not ${inp.datatype}`);
    const data = Array.isArray(inp.data) ? (inp.data as unknown[]).flat(3) : null;
    if (!data) throw badRequest(`${label}: data must be an array of files`);
    if (inp.shape.length !== 1 || inp.shape[0] !== data.length)
      throw badRequest(`${label}: shape [${inp.shape.join(',')}] must be [${data.length}], one file per row`);
    if (rows !== undefined && data.length !== rows) throw badRequest(`${label} has ${data.length} files; the other inputs have ${rows}`);
    rows = data.length;
    const bytes = step.type === 'text' ? undefined : raw.get(inp.name);
    const files = data.map((v, j) => {
      if (bytes?.[j]) {
        if (!bytes[j].length) throw badRequest(`${label}: data[${j}] is an empty file`);
        return bytes[j].toString('base64');
      }
      if (step.type === 'text') {
        if (typeof v !== 'string') throw badRequest(`${label}: data[${j}] must be a text (a string)`);
        return v;
      }
      const f = fileB64(v);
      if (typeof f !== 'string') throw badRequest(`${label}: data[${j}] ${f.error}`);
      return f;
    });
    inputs.push({ name: inp.name, datatype: 'BYTES', shape: [files.length], data: files });
  }
  const missing = steps.filter((s) => !inputs.some((t) => t.name === s.input));
  if (missing.length) throw badRequest(`missing input${missing.length > 1 ? 's' : ''} ${missing.map((s) => `"${s.input}"`).join(', ')}`);
  if (!body.outputs) return { inputs };
  const known = new Set([...model.outputs.map((o) => o.name), ...(model.processing?.post ? POST_OUTPUTS : [])]);
  const outputs = body.outputs.map((o) => o.name);
  const bad = outputs.find((n) => !known.has(n));
  if (bad !== undefined) throw badRequest(`unknown output "${bad}"; model ${model.name} has ${[...known].map((n) => `"${n}"`).join(', ')}`);
  return { inputs, outputs };
}

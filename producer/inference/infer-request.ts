// The Open Inference Protocol request body, and its check against a model's signature, so a bad
// request is answered 400 by the producer and never reaches a worker.
import { z } from 'zod';
import { badRequest } from '../../core/errors.ts';
import { parseBody } from '../http.ts';
import type { InferRequest } from '../../core/jobs/infer.ts';
import type { VersionRecord } from '../../core/registry.ts';
import { DATATYPES, dataArray, flattenData, type Tensor } from '../../core/tensors.ts';
import { dataWithMissing, isColumnInput } from '../../core/rows/columns.ts';

export const v2InferRequestSchema = z.object({
  id: z.string().max(256).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  inputs: z
    .array(
      z.object({
        name: z.string().min(1).max(256),
        shape: z
          .array(
            z
              .number()
              .int()
              .min(0)
              .max(2 ** 31),
          )
          .max(16),
        datatype: z.string(),
        parameters: z.record(z.string(), z.unknown()).optional(),
        data: dataArray<unknown>('Tensor data, flat in row-major order or nested to match shape'),
      }),
    )
    .min(1, 'at least one input is required'),
  outputs: z.array(z.object({ name: z.string(), parameters: z.record(z.string(), z.unknown()).optional() })).optional(),
});
export type V2InferRequest = z.infer<typeof v2InferRequestSchema>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAX_DIM = 2 ** 31;

/**
 * The body as v2InferRequestSchema gives it, checked by hand for the common form (an id, inputs of
 * name, shape, datatype and data, outputs by name; no parameters anywhere), which is every request
 * of a busy client: zod's walk over the objects was about 5% of the producer's CPU per request.
 * Anything else, valid or not, goes through the schema, which also words the errors. Like the
 * schema, it keeps only the known keys.
 */
export function readInferRequest(json: unknown): V2InferRequest {
  return simpleInferRequest(json) ?? parseBody(v2InferRequestSchema, json, 'request');
}

function simpleInferRequest(json: unknown): V2InferRequest | undefined {
  if (!isRecord(json) || json.parameters !== undefined) return undefined;
  const { id, inputs, outputs } = json;
  if (id !== undefined && (typeof id !== 'string' || id.length > 256)) return undefined;
  if (!Array.isArray(inputs) || inputs.length === 0) return undefined;
  const ins: V2InferRequest['inputs'] = [];
  for (const i of inputs as unknown[]) {
    if (!isRecord(i) || i.parameters !== undefined) return undefined;
    const { name, shape, datatype, data } = i;
    if (typeof name !== 'string' || name.length < 1 || name.length > 256 || typeof datatype !== 'string') return undefined;
    if (!Array.isArray(shape) || shape.length > 16) return undefined;
    for (const d of shape as unknown[]) if (!Number.isInteger(d) || (d as number) < 0 || (d as number) > MAX_DIM) return undefined;
    if (!Array.isArray(data) && !(data instanceof Float32Array)) return undefined;
    ins.push({ name, shape: shape as number[], datatype, data: data as unknown[] });
  }
  const body: V2InferRequest = { inputs: ins };
  if (id !== undefined) body.id = id;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) return undefined;
    const outs: NonNullable<V2InferRequest['outputs']> = [];
    for (const o of outputs as unknown[]) {
      if (!isRecord(o) || o.parameters !== undefined || typeof o.name !== 'string') return undefined;
      outs.push({ name: o.name });
    }
    body.outputs = outs;
  }
  return body;
}

const MAX_ELEMENTS = 50_000_000;

/** Checks names, datatypes, shapes and data against the model; returns the request in job form. */
export function checkInferRequest(body: V2InferRequest, model: VersionRecord): InferRequest {
  const specs = new Map(model.inputs.map((i) => [i.name, i]));
  // A column-input model's null element is a missing value: NaN for a float input (JSON has no NaN), "" for a string one.
  const columns = isColumnInput(model.inputs);
  const seen = new Set<string>();
  const inputs: Tensor[] = [];
  for (const [i, inp] of body.inputs.entries()) {
    const label = `inputs[${i}] "${inp.name}"`;
    const spec = specs.get(inp.name);
    if (!spec) throw badRequest(`unknown input "${inp.name}"; model ${model.name} takes ${[...specs.keys()].map((n) => `"${n}"`).join(', ')}`);
    if (seen.has(inp.name)) throw badRequest(`input "${inp.name}" is given twice`);
    seen.add(inp.name);
    if (!(DATATYPES as readonly string[]).includes(inp.datatype))
      throw badRequest(`${label}: unknown datatype "${inp.datatype}" (one of ${DATATYPES.join(', ')})`);
    if (inp.datatype !== spec.datatype) throw badRequest(`${label}: datatype ${inp.datatype} does not match the model's ${spec.datatype}`);
    // A column of a column-input model may come as [n] for its [n, 1] input (as a text model's [n] input took it).
    const shape = columns && spec.shape.length === 2 && spec.shape[1] === 1 && inp.shape.length === 1 ? [inp.shape[0]!, 1] : inp.shape;
    if (spec.shape.length !== shape.length)
      throw badRequest(`${label}: shape [${shape.join(',')}] has rank ${shape.length}, the model expects rank ${spec.shape.length} [${spec.shape.join(',')}]`);
    for (let d = 0; d < spec.shape.length; d++) {
      const want = spec.shape[d]!;
      if (want >= 0 && shape[d] !== want)
        throw badRequest(`${label}: shape [${shape.join(',')}] does not match the model's [${spec.shape.join(',')}] at dimension ${d}`);
    }
    if (shape.reduce((a, b) => a * b, 1) > MAX_ELEMENTS) throw badRequest(`${label}: more than ${MAX_ELEMENTS} elements`);
    const flat = columns ? flattenData(dataWithMissing(spec, inp.data), shape, spec.datatype, label, true) : flattenData(inp.data, shape, spec.datatype, label);
    if ('error' in flat) throw badRequest(flat.error);
    inputs.push({ name: inp.name, datatype: spec.datatype, shape: shape, data: flat.data });
  }
  const missing = [...specs.keys()].filter((n) => !seen.has(n));
  if (missing.length) throw badRequest(`missing input${missing.length > 1 ? 's' : ''} ${missing.map((n) => `"${n}"`).join(', ')}`);
  let outputs: string[] | undefined;
  if (body.outputs) {
    const known = new Set(model.outputs.map((o) => o.name));
    outputs = body.outputs.map((o) => o.name);
    const bad = outputs.find((n) => !known.has(n));
    if (bad !== undefined) throw badRequest(`unknown output "${bad}"; model ${model.name} has ${[...known].map((n) => `"${n}"`).join(', ')}`);
  }
  return outputs ? { inputs, outputs } : { inputs };
}

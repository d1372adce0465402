// The Open Inference Protocol request body, and its check against a model's signature, so a bad
// request is answered 400 by the producer and never reaches a worker.
import { z } from 'zod';
import { badRequest } from '../../core/errors.ts';
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

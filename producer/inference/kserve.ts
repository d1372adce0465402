// The KServe V1 (TF Serving) body, `{"instances": [...]}`, as an Open Inference Protocol request of
// the model it names, and the protocol answer back as `{"predictions": [...]}`: the /v1 `:predict`
// and `:explain` routes convert and then take the /v2 path itself (same keys, tenants, backpressure,
// coalescing and limits). Instances are objects keyed by input name for a model whose every input
// takes one value per row (a missing key or null is a missing value, core/rows/columns.ts; keys that
// name no input are ignored), arrays for a model with a single input of rank 2 or more, or bare
// values for a single input of one value per row.
import { z } from 'zod';
import { badRequest } from '../../core/errors.ts';
import { metadataList, type VersionRecord } from '../../core/registry.ts';
import { isColumnInput, isFloat, oneValuePerRow, withMissing } from '../../core/rows/columns.ts';
import type { Tensor, TensorSpec } from '../../core/tensors.ts';
import { EXPLAIN_OUTPUT_NAMES } from '../../core/jobs/batch.ts';
import type { V2InferRequest } from './infer-request.ts';

export const MAX_INSTANCES = 100_000;

export const kserveRequestSchema = z.object({
  instances: z.array(z.unknown()).min(1, 'at least one instance is required').max(MAX_INSTANCES).meta({
    description:
      'One entry per row: an object keyed by input name (a model whose every input takes one value per row; absent keys and null are missing values: NaN for a float input, "" for a string input; other keys are ignored), an array (a model with a single input of rank 2 or more), or a bare value (a single input of one value per row). Strings may be sent as {"b64": "..."}',
  }),
  parameters: z
    .record(z.string(), z.unknown())
    .optional()
    .meta({ description: 'Passed on as the inference-protocol parameters (device; explainSamples, explainClass, explainSeed for :explain)' }),
});
export type KServeRequest = z.infer<typeof kserveRequestSchema>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const describeInputs = (m: VersionRecord) => m.inputs.map((i) => `"${i.name}" ${i.datatype} [${i.shape.join(',')}]`).join(', ');

/** One instance value of a column-input model's input: missing values replaced, strings from {"b64"}, numbers as text for a string input. */
function columnValue(spec: TensorSpec, v: unknown, where: string): unknown {
  if (isObject(v) && typeof v.b64 === 'string' && Object.keys(v).length === 1) v = Buffer.from(v.b64, 'base64').toString('utf8');
  const x = withMissing(spec, v);
  if (spec.datatype === 'BYTES') {
    // A category written as a number or boolean (a code, a flag) is its text, as in a CSV cell.
    if (typeof x === 'number' || typeof x === 'boolean') return String(x);
    if (typeof x !== 'string') throw badRequest(`${where} must be a string or null, got ${JSON.stringify(x)?.slice(0, 40)}`);
    return x;
  }
  if (isFloat(spec) && !(typeof x === 'number' && (Number.isFinite(x) || Number.isNaN(x))))
    throw badRequest(`${where} must be a number or null, got ${JSON.stringify(x)?.slice(0, 40)}`);
  if (x === undefined) throw badRequest(`${where} is missing (input "${spec.name}" is ${spec.datatype}, which has no missing value)`);
  return x;
}

/** The instances as the inference-protocol request of `model`; `parameters` are added to the body's. */
export function instancesToInfer(body: KServeRequest, model: VersionRecord, parameters: Record<string, unknown> = {}): V2InferRequest {
  const xs = body.instances;
  const n = xs.length;
  const params = { ...body.parameters, ...parameters };
  const request = (inputs: V2InferRequest['inputs']): V2InferRequest => ({ inputs, ...(Object.keys(params).length ? { parameters: params } : {}) });
  const perRow = (spec: TensorSpec) => [n, ...spec.shape.slice(1)];
  if (xs.every(isObject)) {
    if (!isColumnInput(model.inputs))
      throw badRequest(
        `instances as objects feed a model whose every input takes one value per row; model ${model.name} takes ${describeInputs(model)}: send each instance as an array`,
      );
    return request(
      model.inputs.map((spec) => ({
        name: spec.name,
        datatype: spec.datatype,
        shape: perRow(spec),
        data: xs.map((x, i) => columnValue(spec, (x as Record<string, unknown>)[spec.name], `instances[${i}].${spec.name}`)),
      })),
    );
  }
  const only = model.inputs.length === 1 ? model.inputs[0]! : undefined;
  if (only && xs.every((x) => !isObject(x))) {
    if (oneValuePerRow(only) && !xs.some(Array.isArray))
      return request([{ name: only.name, datatype: only.datatype, shape: perRow(only), data: xs.map((x, i) => columnValue(only, x, `instances[${i}]`)) }]);
    if (only.shape.length >= 2 && xs.every(Array.isArray)) {
      // The row shape from the first instance (the model may leave dimensions open); the rest must match it.
      const shape = [n];
      for (let cur: unknown = xs[0]; Array.isArray(cur); cur = cur[0]) shape.push(cur.length);
      if (shape.length !== only.shape.length)
        throw badRequest(
          `instances[0] is nested to rank ${shape.length - 1}; input "${only.name}" [${only.shape.join(',')}] takes rank ${only.shape.length - 1} per row`,
        );
      const d = only.shape.findIndex((want, k) => k > 0 && want >= 0 && shape[k] !== want);
      if (d > 0) throw badRequest(`instances[0] has ${shape[d]} values at depth ${d}; input "${only.name}" [${only.shape.join(',')}] takes ${only.shape[d]}`);
      return request([{ name: only.name, datatype: only.datatype, shape, data: xs }]);
    }
  }
  throw badRequest(
    `instances must be all objects keyed by input name (a model whose every input takes one value per row), or all arrays or values of a model's single input; model ${model.name} takes ${describeInputs(model)}`,
  );
}

/** One row's value of an output: a scalar when the output has one value per row, else the row's flat values. */
function rowValue(t: Tensor, i: number, n: number): unknown {
  if (t.shape[0] !== n) return t.data;
  const per = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return per === 1 ? t.data[i] : Array.from(t.data.slice(i * per, (i + 1) * per));
}

/** Names of a row's `probabilities`: the version's classes, when it lists as many. */
const classesOf = (model: VersionRecord, width: number): string[] | undefined => {
  const c = metadataList<unknown>(model, 'classes');
  return c && c.length === width ? c.map(String) : undefined;
};

const byName = (names: string[] | undefined, values: unknown) =>
  names && Array.isArray(values) && values.length === names.length ? Object.fromEntries(names.map((k, j) => [k, values[j]])) : values;

/**
 * The protocol outputs as one prediction per row: an object of the model's outputs by name, each
 * the row's value (a `label` string, a number, or a list); `probabilities` keyed by class when the
 * version lists its classes.
 */
export function predictionsOf(outputs: Tensor[], model: VersionRecord, n: number): Record<string, unknown>[] {
  const own = outputs.filter((t) => !(EXPLAIN_OUTPUT_NAMES as readonly string[]).includes(t.name));
  return Array.from({ length: n }, (_, i) =>
    Object.fromEntries(
      own.map((t) => {
        const v = rowValue(t, i, n);
        return [t.name, t.name === 'probabilities' && Array.isArray(v) ? byName(classesOf(model, v.length), v) : v];
      }),
    ),
  );
}

/**
 * An explained answer's rows: `attributions` keyed by player (the answer's `explain_features` names,
 * else a column-input model's input names when there are as many), `base` and `class` of each row,
 * and `tokens` for a text model explained word by word.
 */
export function explanationsOf(outputs: Tensor[], parameters: Record<string, unknown>, model: VersionRecord, n: number): Record<string, unknown>[] {
  const get = (name: string) => outputs.find((t) => t.name === name);
  const attributions = get('attributions');
  const tokens = get('explain_tokens');
  const base = parameters.explain_base;
  const cls = parameters.explain_class;
  const named = Array.isArray(parameters.explain_features) ? parameters.explain_features.map(String) : undefined;
  return Array.from({ length: n }, (_, i) => {
    const a = attributions ? rowValue(attributions, i, n) : undefined;
    const row = Array.isArray(a) ? a : a === undefined ? [] : [a];
    const names = tokens ? undefined : (named ?? (isColumnInput(model.inputs) ? model.inputs.map((s) => s.name) : undefined));
    return {
      attributions: byName(names, row),
      ...(tokens ? { tokens: rowValue(tokens, i, n) } : {}),
      ...(Array.isArray(base) && base[i] !== undefined ? { base: base[i] } : {}),
      ...(Array.isArray(cls) && cls[i] !== undefined ? { class: cls[i] } : {}),
    };
  });
}

// ModelInfer through the inference service, as REST /v2 infer: the request becomes the protocol's
// JSON form, is checked by the same schema and signature check and travels coalesced with REST's
// requests; the packed answer leaves as raw_output_contents without a detour through JSON numbers.
import { badRequest } from '../../core/errors.ts';
import type { Answer, Caller, InferenceService } from '../inference/service.ts';
import { RAW_FILES } from '../../core/processing/request.ts';
import { bytesElements, decodeRaw, decodeTyped, encodeOutput, type TensorContents } from './contents.ts';

/** InferParameter with proto-loader's `oneofs: true`: the chosen field is named in parameter_choice. */
export interface InferParameter {
  parameter_choice?: string;
  [k: string]: unknown;
}
type Params = Record<string, InferParameter>;

export interface ModelInferRequest {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Params;
  inputs?: { name: string; datatype: string; shape?: number[]; parameters?: Params; contents?: TensorContents }[];
  outputs?: { name: string; parameters?: Params }[];
  raw_input_contents?: Buffer[];
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Params;
  outputs: { name: string; datatype: string; shape: number[] }[];
  raw_output_contents: Buffer[];
}

export function paramValues(p: Params | undefined): Record<string, unknown> | undefined {
  if (!p || Object.keys(p).length === 0) return undefined;
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.parameter_choice ? v[v.parameter_choice] : undefined]));
}

/** BYTES elements keep their bytes beside their text, for a model whose processing takes files (core/processing/request.ts). */
function withRawFiles<T>(data: T, bytes: Buffer[] | undefined): T {
  if (bytes?.length && Array.isArray(data)) Object.defineProperty(data, RAW_FILES, { value: bytes, enumerable: false });
  return data;
}

/** The gRPC request in the REST body's form; raw and typed contents may not be mixed (as Triton answers). */
export function toV2Body(req: ModelInferRequest): unknown {
  const inputs = req.inputs ?? [];
  const raw = req.raw_input_contents ?? [];
  if (raw.length > 0) {
    const typed = inputs.findIndex((i) => i.contents !== undefined && i.contents !== null);
    if (typed >= 0) throw badRequest(`contents must not be given with raw_input_contents: inputs[${typed}] "${inputs[typed]!.name}" has typed contents`);
    if (raw.length !== inputs.length) throw badRequest(`raw_input_contents has ${raw.length} entries for ${inputs.length} inputs`);
  }
  return {
    ...(req.id ? { id: req.id } : {}),
    ...(paramValues(req.parameters) ? { parameters: paramValues(req.parameters) } : {}),
    inputs: inputs.map((i, n) => {
      const label = `inputs[${n}] "${i.name}"`;
      return {
        name: i.name,
        shape: i.shape ?? [],
        datatype: i.datatype,
        data: withRawFiles(
          raw.length > 0 ? decodeRaw(raw[n]!, i.datatype, `raw_input_contents[${n}] (${label})`) : decodeTyped(i.contents, i.datatype, `${label}.contents`),
          i.datatype !== 'BYTES' ? undefined : raw.length > 0 ? bytesElements(raw[n]!) : i.contents?.bytes_contents,
        ),
      };
    }),
    ...(req.outputs?.length ? { outputs: req.outputs.map((o) => ({ name: o.name })) } : {}),
  };
}

/** The service's answer as the protocol's ModelInferResponse: raw_output_contents, explanations as response parameters. */
export function toInferResponse(a: Answer, id: string | undefined): ModelInferResponse {
  const outputs = a.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape }));
  const head = { model_name: a.model.name, model_version: String(a.model.version), id: id ?? '' };
  const p = a.explanation;
  if (!p) return { ...head, outputs, raw_output_contents: a.outputs.map(encodeOutput) };
  // As REST: `attributions` among the outputs; the explanation's figures as response parameters
  // (arrays as JSON text in string_param, as a parameter holds one scalar).
  return {
    ...head,
    parameters: {
      explain_base: { string_param: JSON.stringify(p.explain_base) },
      explain_class: { string_param: JSON.stringify(p.explain_class) },
      explain_output: { string_param: p.explain_output },
      explain_method: { string_param: p.explain_method },
      ...(p.explain_samples !== undefined ? { explain_samples: { int64_param: p.explain_samples } } : {}),
      ...(p.explain_columns ? { explain_columns: { string_param: JSON.stringify(p.explain_columns) } } : {}),
    },
    outputs,
    raw_output_contents: a.outputs.map(encodeOutput),
  };
}

/** One ModelInfer request through the inference service (admission, coalescing with REST, delivery). */
export async function grpcInfer(service: InferenceService, req: ModelInferRequest, caller: Caller): Promise<ModelInferResponse> {
  if (!req.model_name) throw badRequest('model_name is required');
  const release = await service.admit(req.model_name, caller.client);
  try {
    // Converted after admission, as REST parses its body only for admitted requests' checks.
    const answer = await service.inferAdmitted(req.model_name, req.model_version || undefined, toV2Body(req), caller);
    return toInferResponse(answer, req.id);
  } finally {
    release();
  }
}

// ModelInfer on the same path as REST /v2 infer: the request becomes the protocol's JSON form, is
// checked by the same schema and signature check, and travels coalesced as `infer` jobs; the
// packed answer leaves as raw_output_contents without a detour through JSON numbers.
import type { Principal } from '../../core/auth.ts';
import { badRequest, fromErrorData } from '../../core/errors.ts';
import { packTensor, type Batching } from '../../core/jobs/infer.ts';
import type { ServingTarget } from '../../core/registry.ts';
import { JobAnswers } from '../await-job.ts';
import { admitOnline, backpressureFor } from '../backpressure.ts';
import { InferCoalescer } from '../coalescer.ts';
import type { ProducerDeps } from '../deps.ts';
import { checkReadable } from '../model-access.ts';
import { parseBody } from '../http.ts';
import { checkInferRequest, v2InferRequestSchema } from '../infer-request.ts';
import { isBatchable } from '../routes/v2.ts';
import { createExplain, explainParams } from '../explain.ts';
import { DriftSampler } from '../drift-sampler.ts';
import { DriftWindows, ReferenceCollector } from '../../core/drift.ts';
import { decodeRaw, decodeTyped, encodeOutput, type TensorContents } from './contents.ts';

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
        data: raw.length > 0 ? decodeRaw(raw[n]!, i.datatype, `raw_input_contents[${n}] (${label})`) : decodeTyped(i.contents, i.datatype, `${label}.contents`),
      };
    }),
    ...(req.outputs?.length ? { outputs: req.outputs.map((o) => ({ name: o.name })) } : {}),
  };
}

export type GrpcInferFn = (req: ModelInferRequest, gone: () => boolean, who: Principal) => Promise<ModelInferResponse>;

export function createGrpcInfer(d: ProducerDeps): GrpcInferFn {
  const lanes = new Map<'infer' | 'infer-gpu', InferCoalescer>();
  const lane = (q: 'infer' | 'infer-gpu') => {
    let c = lanes.get(q);
    if (!c)
      lanes.set(q, (c = new InferCoalescer(d.queues.queue(q), new JobAnswers(d.queues.queue(q), d.queues.queueEvents(q)), d.cfg.MODELQ_INFER_TIMEOUT_MS)));
    return c;
  };
  const batchings = new WeakMap<ServingTarget, Batching>();
  const batchingOf = (t: ServingTarget) => {
    let b = batchings.get(t);
    if (!b) batchings.set(t, (b = { ...t.config, batchable: isBatchable(t.model) }));
    return b;
  };
  const prepare = async (req: ModelInferRequest, who: Principal) => {
    if (!req.model_name) throw badRequest('model_name is required');
    const body = parseBody(v2InferRequestSchema, toV2Body(req), 'request');
    const target = await d.registry.serving(req.model_version ? `${req.model_name}@${req.model_version}` : req.model_name);
    checkReadable(target.model.name, target.access, who); // another tenant's private model is "not found"
    const checked = checkInferRequest(body, target.model);
    drift.observe(target.model, checked, { tenant: who.tenant, owner: target.access.owner });
    const device = body.parameters?.device;
    if (device !== undefined && device !== 'gpu' && device !== 'cpu') throw badRequest('parameters.device must be "cpu" or "gpu"');
    return { target, gpu: device === 'gpu', explain: explainParams(body.parameters), request: { ...checked, inputs: checked.inputs.map(packTensor) } };
  };
  const drift = new DriftSampler(
    d.store,
    new DriftWindows(d.redis, d.prefix, d.cfg.MODELQ_DRIFT_WINDOW),
    d.cfg.MODELQ_DRIFT_SAMPLE,
    d.logger,
    new ReferenceCollector(d.redis, d.prefix, d.store, d.registry, d.cfg.MODELQ_DRIFT_REFERENCE_ROWS),
  );
  const explainFn = createExplain(d);
  const bp = backpressureFor(d);
  return async (req, gone, who) => {
    // The same admission as REST /v2 (one count of requests in flight for both doors).
    const release = admitOnline(bp, req.model_name);
    try {
      return await inferOne(req, gone, who);
    } finally {
      release();
    }
  };

  async function inferOne(req: ModelInferRequest, gone: () => boolean, who: Principal): Promise<ModelInferResponse> {
    const { target, gpu, request, explain } = await prepare(req, who);
    if (explain) {
      // As REST: `attributions` among the outputs; the explanation's figures as response parameters
      // (arrays as JSON text in string_param, as a parameter holds one scalar).
      const r = await explainFn(target.model, request, explain, gpu);
      const p = r.parameters;
      return {
        model_name: target.model.name,
        model_version: String(target.model.version),
        id: req.id ?? '',
        parameters: {
          explain_base: { string_param: JSON.stringify(p.explain_base) },
          explain_class: { string_param: JSON.stringify(p.explain_class) },
          explain_output: { string_param: p.explain_output },
          explain_method: { string_param: p.explain_method },
          ...(p.explain_samples !== undefined ? { explain_samples: { int64_param: p.explain_samples } } : {}),
          ...(p.explain_columns ? { explain_columns: { string_param: JSON.stringify(p.explain_columns) } } : {}),
        },
        outputs: r.tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
        raw_output_contents: r.tensors.map(encodeOutput),
      };
    }
    const answer = await lane(gpu ? 'infer-gpu' : 'infer').submit(target.model, batchingOf(target), request, gone);
    if (!answer.ok) throw fromErrorData(answer.error); // its code and whether a retry may succeed, as REST
    return {
      model_name: target.model.name,
      model_version: String(target.model.version),
      id: req.id ?? '',
      outputs: answer.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
      raw_output_contents: answer.outputs.map(encodeOutput),
    };
  }
}

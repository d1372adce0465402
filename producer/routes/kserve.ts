// KServe V1 (the TF Serving convention): POST /v1/models/{name}[/versions/{v}]:predict and :explain
// with {"instances": [...]}. The instances become an inference-protocol request (inference/kserve.ts)
// answered by the inference service, as /v2 and gRPC are, so keys, tenants, limits and coalescing are
// the same; :explain asks it for an explanation, as `parameters.explain` on /v2 does.
import { Router, type Request, type Response } from 'express';
import { toProtocolTensor } from '../../core/jobs/infer.ts';
import { VERSION_HEADER } from '../../core/routing.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { explanationsOf, instancesToInfer, kserveRequestSchema, predictionsOf } from '../inference/kserve.ts';
import { checkReadable } from '../model-access.ts';
import { inferenceFor, type Caller } from '../inference/service.ts';
import { callerOf } from './v2.ts';
import { fileInstancesToInfer, multipartFiles } from '../inference/files.ts';
import { fileInputs } from '../../core/processing/pipeline.ts';

export function kserveRouter(d: ProducerDeps): Router {
  const r = Router();
  const service = inferenceFor(d);
  const json = jsonBody(d.cfg);

  const handle = (explain: boolean) => async (req: Request, res: Response) => {
    const { name } = req.params as { name: string };
    const caller = callerOf(req);
    // Admitted first, as on every door: a refused or bad request counts against the limits too.
    const release = await service.admit(name, caller.client);
    try {
      await answer(req, res, explain, caller);
    } finally {
      release();
    }
  };

  const answer = async (req: Request, res: Response, explain: boolean, caller: Caller) => {
    const { name, version } = req.params as { name: string; version?: string };
    const body = parseBody(kserveRequestSchema, req.body, 'body');
    req.body = undefined;
    // The version is resolved once and pinned, so the instances are read against the version that answers.
    // A weighted alias picks its version here (by the route key), and the request is pinned to it.
    const { model, access } = await d.registry.serving(version === undefined ? name : `${name}@${version}`, caller.routeKey);
    checkReadable(model.name, access, caller.who); // another tenant's private model is "not found", before its inputs are named
    const request = (fileInputs(model) ? fileInstancesToInfer : instancesToInfer)(body, model, { explain });
    const a = await service.inferAdmitted(model.name, String(model.version), request, { ...caller, asked: version ?? 'latest' });
    const outputs = a.outputs.map(toProtocolTensor);
    const n = body.instances.length;
    res.setHeader(VERSION_HEADER, String(a.model.version));
    const predictions = predictionsOf(outputs, model, n);
    if (!explain) return void res.json({ predictions });
    const { explain_base: _b, explain_class: _c, ...parameters } = a.explanation ?? {};
    res.json({ predictions, explanations: explanationsOf(outputs, { ...a.explanation }, model, n), parameters });
  };

  // The colon before the verb is literal (escaped), as in Google's custom methods.
  const files = multipartFiles(d.cfg, json); // or files, for a model with declared processing (inference/files.ts)
  r.post('/v1/models/:name\\:predict', files, handle(false));
  r.post('/v1/models/:name/versions/:version\\:predict', files, handle(false));
  r.post('/v1/models/:name\\:explain', json, handle(true));
  r.post('/v1/models/:name/versions/:version\\:explain', json, handle(true));
  return r;
}

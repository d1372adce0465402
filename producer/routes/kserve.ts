// KServe V1 (the TF Serving convention): POST /v1/models/{name}[/versions/{v}]:predict and :explain
// with {"instances": [...]}. The instances become an inference-protocol request (producer/kserve.ts)
// answered by the /v2 path's own function, so keys, tenants, backpressure, coalescing and limits are
// the same; :explain asks that path for an explanation, as `parameters.explain` on /v2 does.
import { Router, type Request, type Response } from 'express';
import type { Tensor } from '../../core/tensors.ts';
import { principalOf } from '../auth.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { explanationsOf, instancesToInfer, kserveRequestSchema, predictionsOf } from '../kserve.ts';
import { checkReadable } from '../model-access.ts';
import type { InferFn } from './v2.ts';

/** The /v2 answer this route reads. */
interface Answer {
  outputs: Tensor[];
  parameters?: Record<string, unknown>;
}

export function kserveRouter(d: ProducerDeps, inferFn: InferFn): Router {
  const r = Router();
  const json = jsonBody(d.cfg);

  const handle = (explain: boolean) => async (req: Request, res: Response) => {
    const { name, version } = req.params as { name: string; version?: string };
    const who = principalOf(req);
    const body = parseBody(kserveRequestSchema, req.body, 'body');
    req.body = undefined;
    // The version is resolved once and pinned, so the instances are read against the version that answers.
    const { model, access } = await d.registry.serving(version === undefined ? name : `${name}@${version}`);
    checkReadable(model.name, access, who); // another tenant's private model is "not found", before its inputs are named
    const request = instancesToInfer(body, model, { explain });
    const answer = (await inferFn(model.name, String(model.version), request, req.socket, who)) as Answer;
    const n = body.instances.length;
    const predictions = predictionsOf(answer.outputs, model, n);
    if (!explain) return void res.json({ predictions });
    const { explain_base: _b, explain_class: _c, ...parameters } = answer.parameters ?? {};
    res.json({ predictions, explanations: explanationsOf(answer.outputs, answer.parameters ?? {}, model, n), parameters });
  };

  // The colon before the verb is literal (escaped), as in Google's custom methods.
  r.post('/v1/models/:name\\:predict', json, handle(false));
  r.post('/v1/models/:name/versions/:version\\:predict', json, handle(false));
  r.post('/v1/models/:name\\:explain', json, handle(true));
  r.post('/v1/models/:name/versions/:version\\:explain', json, handle(true));
  return r;
}

// POST /v1/models/{name}/pipelines: a new version of `name` that is a pipeline of registered model
// versions (core/processing/pipeline.ts). Every step's model is looked up (by version, alias, or
// latest, and pinned to the version found), the graph is checked, and the version is created at
// once: a pipeline has no ONNX file of its own for a worker to check. Its digest is that of its
// resolved steps, so registering the same graph over the same versions again answers that version.
import { createHash } from 'node:crypto';
import { Router } from 'express';
import { isPlatform } from '../../core/auth.ts';
import { AppError, badRequest } from '../../core/errors.ts';
import { pipelineLineage } from '../../core/lineage.ts';
import { pipelineSpecSchema, resolvePipeline, type PipelineStepSpec, type StepModel } from '../../core/processing/pipeline.ts';
import { checkName, type Registry } from '../../core/registry.ts';
import type { Principal } from '../../core/auth.ts';
import { principalOf } from '../auth.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { assertReadable, assertWritable } from '../model-access.ts';

/** A step's model version, or a 400 naming the step and what it names. */
async function stepModel(registry: Registry, who: Principal, s: PipelineStepSpec, at: string): Promise<StepModel> {
  try {
    checkName(s.model);
    await assertReadable(registry, s.model, who);
    const ref = s.version !== undefined ? `${s.model}@${s.version}` : `${s.model}@${s.alias ?? 'latest'}`;
    return await registry.resolve(ref);
  } catch (e) {
    if (e instanceof AppError && (e.code === 'not_found' || e.code === 'bad_request')) throw badRequest(`${at}: ${e.message}`);
    throw e;
  }
}

export function pipelinesRouter(d: ProducerDeps): Router {
  const r = Router();
  r.post('/v1/models/:name/pipelines', jsonBody(d.cfg), async (req, res) => {
    const name = checkName(req.params.name as string);
    const p = principalOf(req);
    await assertWritable(d.registry, name, p, 'publish');
    const spec = parseBody(pipelineSpecSchema, req.body, 'pipeline');
    for (const s of spec.steps) if (s.model === name) throw badRequest(`pipeline step "${s.name}" names the pipeline's own model "${name}"`);
    const { pipeline, inputs, outputs } = await resolvePipeline(spec, (s, at) => stepModel(d.registry, p, s, at));
    const sha256 = createHash('sha256').update(JSON.stringify(pipeline)).digest('hex');
    const made = await d.registry.createVersion(
      name,
      { sha256, bytes: 0, inputs, outputs, pipeline, lineage: pipelineLineage(pipeline.steps, { tenant: p.tenant, keyId: p.keyId }) },
      { tenant: p.tenant, platform: isPlatform(p) },
    );
    d.logger.info({ model: name, version: made.record.version, steps: pipeline.steps.length, created: made.created }, 'pipeline version registered');
    res.status(made.created ? 201 : 200).json(made.record);
  });
  return r;
}

// /v2: the Open Inference Protocol (REST). Errors use the protocol's own body { "error": "..." }.
import { Router, type Request, type Response } from 'express';
import type { Principal } from '../../core/auth.ts';
import { AppError, fromErrorData } from '../../core/errors.ts';
import { packTensor, toProtocolTensor, type Batching } from '../../core/jobs/infer.ts';
import type { ServingTarget, VersionRecord } from '../../core/registry.ts';
import { readWorkerStats } from '../../core/stats.ts';
import { JobAnswers } from '../await-job.ts';
import { admitOnline, backpressureFor } from '../backpressure.ts';
import { principalOf } from '../auth.ts';
import { assertReadable, checkReadable } from '../model-access.ts';
import { InferCoalescer } from '../coalescer.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { inferBody, jsonBody } from '../body.ts';
import { checkInferRequest, v2InferRequestSchema } from '../infer-request.ts';
import { createExplain, explainParams } from '../explain.ts';
import { DriftSampler } from '../drift-sampler.ts';
import { DriftWindows, ReferenceCollector } from '../../core/drift.ts';

export const SERVER_VERSION = '0.1.0';

/** Requests can be concatenated along the first dimension when every input and output leaves it dynamic. */
export const isBatchable = (m: VersionRecord) => [...m.inputs, ...m.outputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);

/** What res.json sends, without express's generic send path (ETag, freshness, type lookup) on the hot route. */
function sendJson(res: Response, value: unknown) {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** One inference request, from parsed JSON body to the protocol answer; shared by the express route and the fast path. */
/** `who` decides which models the caller may infer (another tenant's private model is "not found"); never defaulted. */
export type InferFn = (name: string, version: string | undefined, body: unknown, socket: { readonly destroyed: boolean }, who: Principal) => Promise<object>;

export function createInfer(d: ProducerDeps): InferFn {
  const coalescerFor = (q: 'infer' | 'infer-gpu') =>
    new InferCoalescer(d.queues.queue(q), new JobAnswers(d.queues.queue(q), d.queues.queueEvents(q)), d.cfg.MODELQ_INFER_TIMEOUT_MS);
  const coalescer = coalescerFor('infer');
  // Requests with parameters.device "gpu" go to the GPU twin queue, which only cuda workers consume.
  let gpuCoalescer: InferCoalescer | undefined;
  // One Batching per cached registry answer, rather than one per request.
  const batchings = new WeakMap<ServingTarget, Batching>();
  const batchingOf = (t: ServingTarget) => {
    let b = batchings.get(t);
    if (!b) batchings.set(t, (b = { ...t.config, batchable: isBatchable(t.model) }));
    return b;
  };
  // Validated and packed first, in a function of its own: only the packed request (not the parsed
  // body) lives on while the answer is awaited, and every live byte is copied again by young-generation GCs.
  const drift = new DriftSampler(
    d.store,
    new DriftWindows(d.redis, d.prefix, d.cfg.MODELQ_DRIFT_WINDOW),
    d.cfg.MODELQ_DRIFT_SAMPLE,
    d.logger,
    new ReferenceCollector(d.redis, d.prefix, d.store, d.registry, d.cfg.MODELQ_DRIFT_REFERENCE_ROWS),
  );
  const prepare = async (name: string, version: string | undefined, json: unknown, who: Principal) => {
    const body = parseBody(v2InferRequestSchema, json, 'request');
    const target = await d.registry.serving(version === undefined ? name : `${name}@${version}`);
    checkReadable(target.model.name, target.access, who);
    const checked = checkInferRequest(body, target.model);
    drift.observe(target.model, checked, { tenant: who.tenant, owner: target.access.owner });
    const device = body.parameters?.device;
    if (device !== undefined && device !== 'gpu' && device !== 'cpu') throw new AppError('bad_request', 'parameters.device must be "cpu" or "gpu"');
    return {
      target,
      id: body.id,
      gpu: device === 'gpu',
      explain: explainParams(body.parameters),
      request: { ...checked, inputs: checked.inputs.map(packTensor) },
    };
  };
  const explain = createExplain(d);
  const bp = backpressureFor(d);
  return async (name, version, json, socket, who) => {
    const release = admitOnline(bp, name);
    try {
      return await inferOne(name, version, json, socket, who);
    } finally {
      release();
    }
  };

  async function inferOne(name: string, version: string | undefined, json: unknown, socket: { readonly destroyed: boolean }, who: Principal) {
    const { target, id, gpu, request, explain: explained } = await prepare(name, version, json, who);
    const { model } = target;
    if (explained) {
      const { outputs, parameters } = await explain(model, request, explained, gpu);
      return { model_name: model.name, model_version: String(model.version), ...(id !== undefined ? { id } : {}), outputs, parameters };
    }
    const lane = gpu ? (gpuCoalescer ??= coalescerFor('infer-gpu')) : coalescer;
    // A client that disconnects before its request leaves the producer is never computed.
    const answer = await lane.submit(model, batchingOf(target), request, () => socket.destroyed);
    if (!answer.ok) throw fromErrorData(answer.error);
    return { model_name: model.name, model_version: String(model.version), ...(id !== undefined ? { id } : {}), outputs: answer.outputs.map(toProtocolTensor) };
  }
}

/** The protocol's model metadata of a version (REST and gRPC answer the same). */
export async function modelMetadata(registry: ProducerDeps['registry'], v: VersionRecord) {
  const m = await registry.getModel(v.name);
  return {
    name: v.name,
    versions: m.versions.map((x) => String(x.version)),
    platform: 'onnxruntime_onnx',
    inputs: v.inputs,
    outputs: v.outputs,
    properties: { version: String(v.version), sha256: v.sha256 },
    // What the version's metadata says (task, target, features, classes: the values `label` takes).
    ...(v.metadata && Object.keys(v.metadata).length ? { parameters: v.metadata } : {}),
  };
}

export function v2Router(d: ProducerDeps, inferFn: InferFn = createInfer(d)): Router {
  const r = Router();
  const json = jsonBody(d.cfg);

  const resolve = async (req: Request): Promise<VersionRecord> => {
    const { name, version } = req.params as { name: string; version?: string };
    await assertReadable(d.registry, name, principalOf(req));
    return d.registry.resolve(version === undefined ? name : `${name}@${version}`);
  };

  // Inference first: it is the hot route, and the router tries routes in order.
  const infer = (req: Request) => {
    const { name, version } = req.params as { name: string; version?: string };
    const value = req.body;
    // Only the packed request lives on while the answer is awaited: tens of requests are in
    // flight at once, and every live byte is copied again by each young-generation GC.
    req.body = undefined;
    return inferFn(name, version, value, req.socket, principalOf(req));
  };
  const body = inferBody(d.cfg.MODELQ_MAX_REQUEST_MB * 1024 * 1024, json);
  r.post('/v2/models/:name/infer', body, async (req, res) => sendJson(res, await infer(req)));
  r.post('/v2/models/:name/versions/:version/infer', body, async (req, res) => sendJson(res, await infer(req)));

  r.get('/v2', (_req, res) => void res.json({ name: 'modelq', version: SERVER_VERSION, extensions: [] }));
  r.get('/v2/health/live', (_req, res) => void res.json({ live: true }));
  r.get('/v2/health/ready', async (_req, res) => {
    try {
      await d.redis.ping();
      res.json({ ready: true });
    } catch {
      res.status(503).json({ error: 'not ready: Redis does not answer' });
    }
  });

  const metadata = async (req: Request) => modelMetadata(d.registry, await resolve(req));
  r.get('/v2/models/:name', async (req, res) => void res.json(await metadata(req)));
  r.get('/v2/models/:name/versions/:version', async (req, res) => void res.json(await metadata(req)));

  // Ready: the version exists and at least one live worker consumes the infer queue.
  const ready = async (req: Request) => {
    await resolve(req);
    const workers = await readWorkerStats(d.redis, d.prefix);
    if (!workers.some((w) => w.queues.includes('infer'))) throw new AppError('unavailable', 'no worker is consuming the infer queue');
    return { ready: true };
  };
  r.get('/v2/models/:name/ready', async (req, res) => void res.json(await ready(req)));
  r.get('/v2/models/:name/versions/:version/ready', async (req, res) => void res.json(await ready(req)));

  return r;
}

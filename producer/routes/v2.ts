// /v2: the Open Inference Protocol (REST). Errors use the protocol's own body { "error": "..." }.
import { Router, type Request, type Response } from 'express';
import { AppError } from '../../core/errors.ts';
import type { VersionRecord } from '../../core/registry.ts';
import { readWorkerStats } from '../../core/stats.ts';
import { InferCoalescer } from '../coalescer.ts';
import type { ProducerDeps } from '../deps.ts';
import { parseBody } from '../http.ts';
import { jsonBody } from '../body.ts';
import { checkInferRequest, v2InferRequestSchema } from '../infer-request.ts';

export const SERVER_VERSION = '0.1.0';

/** Requests can be concatenated along the first dimension when every input and output leaves it dynamic. */
export const isBatchable = (m: VersionRecord) => [...m.inputs, ...m.outputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);

export function v2Router(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);

  const resolve = (req: Request): Promise<VersionRecord> => {
    const { name, version } = req.params as { name: string; version?: string };
    return d.registry.resolve(version === undefined ? name : `${name}@${version}`);
  };

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

  const metadata = async (req: Request) => {
    const v = await resolve(req);
    const m = await d.registry.getModel(v.name);
    return {
      name: v.name,
      versions: m.versions.map((x) => String(x.version)),
      platform: 'onnxruntime_onnx',
      inputs: v.inputs,
      outputs: v.outputs,
      properties: { version: String(v.version), sha256: v.sha256 },
    };
  };
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

  const coalescer = new InferCoalescer(d.queues.queue('infer'), d.queues.queueEvents('infer'), d.cfg.MODELQ_INFER_TIMEOUT_MS);
  const infer = async (req: Request, res: Response) => {
    const body = parseBody(v2InferRequestSchema, req.body, 'request');
    const [model, config] = await Promise.all([resolve(req), d.registry.getConfig(req.params.name as string)]);
    const request = checkInferRequest(body, model);
    // A client that disconnects before its request leaves the producer is never computed.
    const gone = new AbortController();
    res.on('close', () => { if (!res.writableFinished) gone.abort(); });
    const answer = await coalescer.submit(model, { ...config, batchable: isBatchable(model) }, request, gone.signal);
    if (!answer.ok) throw new AppError(answer.error.code as 'bad_request', answer.error.message);
    return { model_name: model.name, model_version: String(model.version), ...(body.id !== undefined ? { id: body.id } : {}), outputs: answer.outputs };
  };
  r.post('/v2/models/:name/infer', json, async (req, res) => void res.json(await infer(req, res)));
  r.post('/v2/models/:name/versions/:version/infer', json, async (req, res) => void res.json(await infer(req, res)));

  return r;
}

// The online inference service: one per producer, behind every door (REST /v2 and its fast path,
// KServe :predict and :explain, gRPC ModelInfer and ModelStreamInfer). A request is admitted against
// every limit (Redis memory, the rate limit of its key or address, requests in flight per producer
// and per model), checked against the model's signature, sampled for drift, and then either sent
// coalesced with the other doors' requests for the same model version, or alone as an explanation.
// The doors only translate: their bodies into the protocol's JSON form, the answer into theirs.
import type { Principal } from '../../core/auth.ts';
import { AppError, badRequest, fromErrorData } from '../../core/errors.ts';
import { DriftWindows, ReferenceCollector } from '../../core/drift/index.ts';
import { bytesTensor, packTensor, protocolTensorJson, toProtocolTensor, type Batching, type InferRequest, type WireTensor } from '../../core/jobs/infer.ts';
import type { ServingTarget, VersionRecord } from '../../core/registry.ts';
import { rateLimitFor, type RateLimit } from '../auth.ts';
import type { ProducerDeps } from '../deps.ts';
import { checkReadable } from '../model-access.ts';
import { FigureRecorder } from '../../core/version-figures.ts';
import { SHADOW_DEADLINE_MS, SHADOW_PRIORITY, ShadowRunner } from '../shadow.ts';
import { shadowLane } from '../../core/jobs/online-wire.ts';
import { JobAnswers } from './await-job.ts';
import { backpressureFor, type Backpressure } from './backpressure.ts';
import { InferCoalescer } from './coalescer.ts';
import { BullmqSender, type GroupSender } from './senders.ts';
import { StreamReplies, StreamSender } from './stream-sender.ts';
import { DriftSampler } from './drift-sampler.ts';
import { createExplain, explainParams, type ExplainAnswerParams, type ExplainFn } from './explain.ts';
import { checkInferRequest, readInferRequest } from './infer-request.ts';
import { checkFileRequest, rawFilesOf } from '../../core/processing/request.ts';
import { LoggingConfigs } from '../../core/payload-logs.ts';
import { PayloadLogger, type LoggedRequest } from './payload-log.ts';
import { topClassesOf } from '../../core/shadow-compare.ts';
import { fileInputs } from '../../core/processing/pipeline.ts';

/** Who asks, as every door knows it. */
export interface Caller {
  /** Decides which models the caller may infer (another tenant's private model is "not found"); never defaulted. */
  who: Principal;
  /** What the rate limit counts (auth.ts clientKey: the key, or the address when the platform runs open). */
  client: string;
  /** True once the client went away: a request not yet sent is then never computed. */
  gone: () => boolean;
  /** Routes the request on a weighted alias (`x-modelq-route-key`); the request id stands in when absent. */
  routeKey?: string;
  /**
   * What the client named after the model (a version number or an alias; `latest` for neither),
   * when the door pins the version itself before calling (KServe :predict): the payload log's alias.
   */
  asked?: string;
}

/** A request's answer, before a door puts it in its own form. */
export interface Answer {
  model: VersionRecord;
  id?: string;
  /** Raw bytes (or base64-packed bytes) where the datatype allows, JSON values otherwise. */
  outputs: WireTensor[];
  /** Set when the request asked for an explanation. */
  explanation?: ExplainAnswerParams;
}

type Lane = 'infer' | 'infer-gpu';

/** Requests can be concatenated along the first dimension when every input and output leaves it dynamic. */
export const isBatchable = (m: VersionRecord) => [...m.inputs, ...m.outputs].every((t) => t.shape.length > 0 && t.shape[0] === -1);

export class InferenceService {
  readonly backpressure: Backpressure;
  readonly rateLimit: RateLimit | null;
  /** One coalescer per queue, shared by every door: REST and gRPC requests of a model travel together. */
  private readonly lanes = new Map<Lane, InferCoalescer>();
  /** Shadow mirrors' coalescer (`mirrorLane`). */
  private mirrors?: InferCoalescer;
  // One Batching per cached registry answer, rather than one per request.
  private readonly batchings = new WeakMap<ServingTarget, Batching>();
  private readonly drift: DriftSampler;
  private readonly explain: ExplainFn;
  /** MODELQ_ONLINE_TRANSPORT=streams: this producer's reply channel, shared by both lanes. */
  private replies?: StreamReplies;
  private readonly streams: boolean;
  /** Per-version answers, errors and latency in Redis: what rollouts are judged by. */
  readonly figures: FigureRecorder;
  /** Mirrors of requests to an alias's shadow version, run after the answer (producer/shadow.ts). */
  readonly shadow: ShadowRunner;
  /** Sampled requests and answers into Parquet parts in the store (PUT /v1/models/{name}/logging). */
  readonly payloads: PayloadLogger;

  constructor(private readonly d: ProducerDeps) {
    this.backpressure = backpressureFor(d);
    this.rateLimit = rateLimitFor(d);
    this.explain = createExplain(d);
    this.streams = d.cfg.MODELQ_ONLINE_TRANSPORT === 'streams';
    const flushMs = Math.min(1000, d.cfg.MODELQ_ROLLOUT_INTERVAL_MS / 4);
    this.figures = new FigureRecorder(d.redis, d.prefix, flushMs);
    this.shadow = new ShadowRunner((t, req) => this.mirrorLane().submit(t.model, this.batchingOf(t), req), d.redis, d.prefix, d.logger, flushMs);
    this.payloads = new PayloadLogger(new LoggingConfigs(d.redis, d.prefix), d.store, d.cfg, d.logger);
    d.closers?.push(() => this.payloads.close());
    this.drift = new DriftSampler(
      d.store,
      new DriftWindows(d.redis, d.prefix, d.cfg.MODELQ_DRIFT_WINDOW),
      d.cfg.MODELQ_DRIFT_SAMPLE,
      d.logger,
      new ReferenceCollector(d.redis, d.prefix, d.store, d.registry, d.cfg.MODELQ_DRIFT_REFERENCE_ROWS),
    );
  }

  /** Coalesced jobs sent so far, over both queues (tests and diagnostics). */
  get jobsSent(): number {
    let n = 0;
    for (const c of this.lanes.values()) n += c.jobsSent;
    return n;
  }

  /**
   * Admits one request for `model`, on every door, before any work: 503 while Redis is nearly full,
   * 429 past the caller's rate limit or too many requests in flight here. Returns the release, to
   * call once the request is answered.
   */
  async admit(model: string, client: string): Promise<() => void> {
    this.backpressure.memory.check();
    if (this.rateLimit) await this.rateLimit.check(client);
    return this.backpressure.gate.enter(model);
  }

  /** One request in the protocol's JSON form (REST's body; other doors convert to it). */
  async infer(name: string, version: string | undefined, json: unknown, caller: Caller): Promise<Answer> {
    const release = await this.admit(name, caller.client);
    try {
      return await this.inferAdmitted(name, version, json, caller);
    } finally {
      release();
    }
  }

  /** One request already admitted (`admit`): a door that converts its body after admission calls this. */
  async inferAdmitted(name: string, version: string | undefined, json: unknown, caller: Caller): Promise<Answer> {
    const started = performance.now();
    const { target, id, gpu, request, packed, explain } = await this.prepare(name, version, json, caller);
    const { model } = target;
    // What the payload log needs of this request, whichever way it ends.
    const logged = (outputs: readonly WireTensor[] | null, error: string | null): LoggedRequest => ({
      model,
      owner: target.access.owner,
      alias: aliasOf(caller.asked ?? version ?? 'latest'),
      tenant: caller.who.tenant,
      keyId: caller.who.keyId,
      clientId: id,
      inputs: request.inputs,
      outputs,
      latencyMs: performance.now() - started,
      error,
    });
    if (explain) {
      // Never coalesced: an explanation's perturbations are thousands of rows run in batches of their own.
      const r = await this.explain(model, packed!, explain, gpu); // packed whenever explained
      this.payloads.offer(logged(r.tensors, null));
      return { model, id, outputs: r.tensors, explanation: r.parameters };
    }
    const answer = await this.lane(gpu ? 'infer-gpu' : 'infer')
      .submit(model, this.batchingOf(target), request, caller.gone)
      .catch((e: unknown) => {
        this.figures.record(model.name, model.version, 0, false);
        this.payloads.offer(logged(null, errorCode(e)));
        throw e;
      });
    const ms = performance.now() - started;
    this.figures.record(model.name, model.version, ms, answer.ok, answer.ok ? topClassesOf(answer.outputs) : undefined);
    if (!answer.ok) {
      this.payloads.offer(logged(null, answer.error.code));
      throw fromErrorData(answer.error); // its code and whether a retry may succeed
    }
    if (target.shadow) this.shadow.mirror(target, request, answer.outputs, ms);
    this.payloads.offer(logged(answer.outputs, null));
    return { model, id, outputs: answer.outputs };
  }

  // Validated and packed in a function of its own: only the packed request (not the parsed body)
  // lives on while the answer is awaited, and every live byte is copied again by young-generation GCs.
  private async prepare(name: string, version: string | undefined, json: unknown, { who, routeKey }: Caller) {
    const body = readInferRequest(json);
    // The one place a door's model reference becomes a version: a weighted alias picks it here.
    const target = await this.d.registry.serving(version === undefined ? name : `${name}@${version}`, routeKey ?? body.id);
    checkReadable(target.model.name, target.access, who);
    // A model with declared processing takes files, which only the worker decodes (core/processing/request.ts).
    // So does a pipeline of files (core/processing/pipeline.ts), whose steps run on the worker.
    const files = fileInputs(target.model) !== undefined;
    const pipeline = target.model.pipeline !== undefined;
    const checked = files ? checkFileRequest(body, target.model, rawFilesOf(json)) : checkInferRequest(body, target.model);
    const from = { tenant: who.tenant, owner: target.access.owner };
    if (!files && !pipeline) this.drift.observe(target.model, checked, from);
    // Files are summarised for drift by the worker that decodes them (core/drift/processed.ts).
    else if (files && !pipeline && this.drift.drawsForWorker(target.model, from)) checked.drift = true;
    if (pipeline && explainParams(body.parameters)) throw badRequest(`model ${target.model.name} is a pipeline: it cannot be explained yet`);
    const device = body.parameters?.device;
    if (device !== undefined && device !== 'gpu' && device !== 'cpu') throw badRequest('parameters.device must be "cpu" or "gpu"');
    const explain = explainParams(body.parameters);
    const packed: InferRequest | undefined = explain || !this.streams ? { ...checked, inputs: checked.inputs.map(packTensor) } : undefined;
    return {
      target,
      id: body.id,
      // Requests with parameters.device "gpu" go to the GPU twin queue, which only cuda workers consume.
      gpu: device === 'gpu',
      explain,
      // Base64 for JSON job data (explanations; the bullmq transport), views of the parsed typed
      // arrays for the stream transport's binary frames.
      request: packed ?? { ...checked, inputs: checked.inputs.map(bytesTensor) },
      packed,
    };
  }

  private lane(q: Lane): InferCoalescer {
    let c = this.lanes.get(q);
    if (!c) {
      c = new InferCoalescer(this.sender(q), this.d.cfg.MODELQ_INFER_TIMEOUT_MS);
      this.lanes.set(q, c);
    }
    return c;
  }

  /**
   * Shadow mirrors travel apart from primaries, so no primary ever waits behind one: on the queue's
   * shadow lane (streams), or as low-priority jobs (bullmq); workers run them in their idle gaps.
   * A mirror not started within SHADOW_DEADLINE_MS is not run (counted as dropped, producer/shadow.ts).
   */
  private mirrorLane(): InferCoalescer {
    return (this.mirrors ??= new InferCoalescer(this.sender('infer', true), Math.min(this.d.cfg.MODELQ_INFER_TIMEOUT_MS, SHADOW_DEADLINE_MS)));
  }

  private sender(q: Lane, shadow = false): GroupSender {
    const { d } = this;
    if (this.streams) {
      if (!this.replies) {
        const replies = (this.replies = new StreamReplies(d.redis, d.prefix, d.cfg.MODELQ_INFER_TIMEOUT_MS, d.logger));
        d.closers?.push(() => replies.close());
      }
      return new StreamSender(d.redis, d.prefix, shadow ? shadowLane(q) : q, this.replies);
    }
    const queue = d.queues.queue(q);
    return new BullmqSender(queue, new JobAnswers(queue, d.queues.queueEvents(q)), d.cfg.MODELQ_INFER_TIMEOUT_MS, shadow ? SHADOW_PRIORITY : undefined);
  }

  private batchingOf(t: ServingTarget): Batching {
    let b = this.batchings.get(t);
    if (!b) this.batchings.set(t, (b = { ...t.config, batchable: isBatchable(t.model) }));
    return b;
  }
}

/** The alias a request named (`latest` when it named nothing), null for a version number. */
const aliasOf = (named: string): string | null => (/^[0-9]+$/.test(named) ? null : named);
const errorCode = (e: unknown): string => (e instanceof AppError ? e.code : 'internal');

const perDeps = new WeakMap<ProducerDeps, InferenceService>();

/** The producer's one service (per deps): the HTTP app and the gRPC server share it, and so its coalescers and counts. */
export function inferenceFor(d: ProducerDeps): InferenceService {
  let s = perDeps.get(d);
  if (!s) perDeps.set(d, (s = new InferenceService(d)));
  return s;
}

/** JSON.stringify(jsonAnswer(a)), the outputs written from their bytes (protocolTensorJson): the REST fast path's body. */
export function jsonAnswerText(a: Answer): string {
  if (a.explanation) return JSON.stringify(jsonAnswer(a));
  const id = a.id !== undefined ? `,"id":${JSON.stringify(a.id)}` : '';
  return `{"model_name":${JSON.stringify(a.model.name)},"model_version":${JSON.stringify(String(a.model.version))}${id},"outputs":[${a.outputs.map(protocolTensorJson).join(',')}]}`;
}

/** The protocol's JSON answer (REST /v2; :predict reads its outputs). */
export function jsonAnswer(a: Answer): object {
  const head = { model_name: a.model.name, model_version: String(a.model.version), ...(a.id !== undefined ? { id: a.id } : {}) };
  const outputs = a.outputs.map(toProtocolTensor);
  return a.explanation ? { ...head, outputs, parameters: a.explanation } : { ...head, outputs };
}

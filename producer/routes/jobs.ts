// /v1/jobs: long-running work. POST /v1/jobs/train checks the request against the dataset (400s name
// the field), fills in every default and queues a `train` job; GET shows state, per-epoch progress and
// the result; cancel sets a flag the processor polls (it kills the trainer within a second or so).
import { randomBytes, randomInt } from 'node:crypto';
import type { Job } from 'bullmq';
import { Router } from 'express';
import { DatasetStore } from '../../core/datasets.ts';
import { AppError, badRequest, fromFailedReason, notFound } from '../../core/errors.ts';
import { jobCancelKey, resolveTrain, trainRequestSchema, TRAIN_JOB_ID_RE } from '../../core/jobs/train.ts';
import type { QueueName } from '../../core/queues.ts';
import { jsonBody } from '../body.ts';
import type { ProducerDeps } from '../deps.ts';
import { isPlatform } from '../../core/auth.ts';
import { principalOf } from '../auth.ts';
import { assertWritable } from '../model-access.ts';
import { parseBody } from '../http.ts';

export const JOB_STATES = ['queued', 'active', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Job kinds served here: the id's prefix names the kind and so the queue. */
const KINDS: Record<string, { queue: QueueName; re: RegExp }> = {
  train: { queue: 'train', re: TRAIN_JOB_ID_RE },
  compress: { queue: 'compress', re: /^compress_[0-9a-f]{20}$/ },
};
const CANCEL_TTL_S = 30 * 24 * 3600;

export interface JobView {
  id: string;
  kind: string;
  state: JobState;
  progress: unknown;
  result?: unknown;
  error?: { code: string; message: string };
  /** While a job is retried: why its previous attempt failed. */
  lastError?: { code: string; message: string };
  attempts: number;
  spec: unknown;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

export function jobsRouter(d: ProducerDeps): Router {
  const r = Router();
  const json = jsonBody(d.cfg);
  const datasets = new DatasetStore(d.redis, d.prefix);

  r.post('/v1/jobs/train', json, async (req, res) => {
    const body = parseBody(trainRequestSchema, req.body);
    const who = principalOf(req);
    const tenant = who.tenant;
    // The result becomes a version of registerAs: refused here, not when the job ends.
    await assertWritable(d.registry, body.registerAs, who, 'publish');
    const ds = await datasets.getFor(body.dataset, tenant);
    if (!ds) throw badRequest(`dataset: no dataset "${body.dataset.slice(0, 100)}"`);
    // A drawn seed is recorded in the job's hyperparameters, so every run can be repeated.
    const data = resolveTrain({ ...body, seed: body.seed ?? randomInt(0, 2 ** 31 - 1) }, ds);
    const id = `train_${randomBytes(10).toString('hex')}`;
    await d.queues.queue('train').add('train', { ...data, tenant, keyId: who.keyId, platform: isPlatform(who) }, { jobId: id });
    d.logger.info({ job: id, dataset: ds.id, registerAs: data.registerAs, task: data.hyperparameters.task }, 'train job queued');
    // The resolved features, and every column with why it is not one, before any training.
    const { features, columns } = data.hyperparameters;
    res.status(202).json({ id, kind: 'train', state: 'queued', features, columns });
  });

  /** The state is read before the job: read the other way round, a job finishing in between shows as completed without its result. */
  /** Another tenant's job is "not found": its existence is not told. */
  const load = async (id: string, tenant: string): Promise<{ job: Job; kind: string; raw: string }> => {
    const kind = id.slice(0, Math.max(0, id.indexOf('_')));
    const k = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
    if (k && k.re.test(id)) {
      const queue = d.queues.queue(k.queue);
      const raw = await queue.getJobState(id);
      const job = await queue.getJob(id);
      if (job && ((job.data as { tenant?: string }).tenant ?? 'default') === tenant) return { job, kind, raw };
    }
    throw notFound(`job "${id.slice(0, 60)}" not found`);
  };

  const view = async ({ job, kind, raw }: { job: Job; kind: string; raw: string }): Promise<JobView> => {
    const cancelled = await d.redis.exists(jobCancelKey(d.prefix, job.id!));
    let state: JobState = raw === 'active' ? 'active' : raw === 'completed' ? 'completed' : raw === 'failed' ? 'failed' : 'queued';
    if (cancelled && state !== 'completed') state = 'cancelled';
    const v: JobView = {
      id: job.id!,
      kind,
      state,
      progress: typeof job.progress === 'object' ? job.progress : null,
      attempts: job.attemptsMade,
      spec: job.data,
      createdAt: new Date(job.timestamp).toISOString(),
      ...(job.processedOn ? { startedAt: new Date(job.processedOn).toISOString() } : {}),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
    };
    if (state === 'completed') v.result = job.returnvalue;
    if (state === 'failed') {
      const e = fromFailedReason(job.failedReason);
      v.error = { code: e.code, message: e.message };
    }
    if (state === 'cancelled') v.error = { code: 'cancelled', message: 'the job was cancelled' };
    if ((state === 'queued' || state === 'active') && job.failedReason) {
      const e = fromFailedReason(job.failedReason);
      v.lastError = { code: e.code, message: e.message };
    }
    return v;
  };

  r.get('/v1/jobs/:id', async (req, res) => void res.json(await view(await load(req.params.id, principalOf(req).tenant))));

  r.post('/v1/jobs/:id/cancel', async (req, res) => {
    const tenant = principalOf(req).tenant;
    const { job } = await load(req.params.id, tenant);
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') throw new AppError('conflict', `job ${job.id} is ${state}; only a queued or active job can be cancelled`);
    await d.redis.set(jobCancelKey(d.prefix, job.id!), '1', 'EX', CANCEL_TTL_S);
    d.logger.info({ job: job.id }, 'job cancel requested');
    res.status(202).json(await view(await load(job.id!, tenant)));
  });

  return r;
}

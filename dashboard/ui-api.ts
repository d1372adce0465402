// The dashboard's own JSON for what the producer's API has no route for: who the key is (so the UI
// shows only the actions it may take), an index of a tenant's training and compression jobs (their
// details come from GET /v1/jobs/{id} through the proxy), worker figures, and download tickets.
import express, { Router } from 'express';
import type { Redis } from 'ioredis';
import type { Job } from 'bullmq';
import { allows, isPlatform, type KeyRing, presentedKey, type Principal } from '../core/auth.ts';
import { jobCancelKey } from '../core/jobs/train.ts';
import type { QueueName, Queues } from '../core/queues.ts';
import { queueConsumers } from './consumers.ts';
import { readWorkerStats } from '../core/stats.ts';
import { authenticate, type Authenticated } from './principal.ts';
import type { Tickets } from './tickets.ts';

const JOB_QUEUES: QueueName[] = ['train', 'compress'];
const STATES = ['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'] as const;
/**
 * How many of the newest jobs per queue and state the index reads before filtering by tenant (the
 * queues keep up to 1000 finished ones): a tenant among many sees its jobs among the newest only.
 */
const SCAN = 200;
/** Open tabs poll every few seconds: one read of the queues per tenant serves them all for this long. */
const INDEX_CACHE_MS = 1500;
const SHOWN = 200;

export interface JobSummary {
  id: string;
  kind: string;
  state: string;
  createdAt: string;
  finishedAt?: string;
  registerAs?: string;
  source?: string;
  method?: string;
  epoch?: number;
  epochs?: number;
  result?: { name: string; version: number };
}

function summary(job: Job, raw: string, cancelled: boolean): JobSummary {
  const d = job.data as { registerAs?: string; dataset?: { id: string }; model?: { name: string; version: number }; method?: string };
  const progress = (typeof job.progress === 'object' ? job.progress : null) as { epoch?: number; epochs?: number } | null;
  const ret = job.returnvalue as { model?: { name: string; version: number } } | null;
  const state = raw === 'completed' ? 'completed' : cancelled ? 'cancelled' : raw === 'active' || raw === 'failed' ? raw : 'queued';
  return {
    id: job.id!,
    kind: job.name,
    state,
    createdAt: new Date(job.timestamp).toISOString(),
    ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
    ...(d.registerAs ? { registerAs: d.registerAs } : {}),
    ...(d.dataset ? { source: d.dataset.id } : d.model ? { source: `${d.model.name}@${d.model.version}` } : {}),
    ...(d.method ? { method: d.method } : {}),
    ...(progress?.epoch !== undefined ? { epoch: progress.epoch, epochs: progress.epochs } : {}),
    ...(state === 'completed' && ret?.model ? { result: ret.model } : {}),
  };
}

/** The newest training and compression jobs of one tenant (the producer's GET /v1/jobs/{id} shows them to that tenant only). */
async function listJobs(queues: Queues, redis: Redis, tenant: string): Promise<JobSummary[]> {
  const found: { job: Job; raw: string }[] = [];
  for (const name of JOB_QUEUES) {
    for (const raw of STATES) {
      for (const job of await queues.queue(name).getJobs([raw], 0, SCAN - 1)) {
        if (job && ((job.data as { tenant?: string }).tenant ?? 'default') === tenant) found.push({ job, raw });
      }
    }
  }
  found.sort((a, b) => b.job.timestamp - a.job.timestamp);
  const shown = found.slice(0, SHOWN);
  const flags = shown.length ? await redis.mget(shown.map(({ job }) => jobCancelKey(queues.prefix, job.id!))) : [];
  return shown.map(({ job, raw }, i) => summary(job, raw, !!flags[i]));
}

const noRedis = (res: express.Response) =>
  res.status(503).json({ error: { code: 'unavailable', message: 'this dashboard was built without a Redis connection' } });

export function uiApi(queues: Queues, redis: Redis | undefined, keys: KeyRing | undefined, tickets: Tickets, seen: Authenticated): Router {
  const r = Router();
  const guarded = !!keys && keys.size > 0;
  const who = (req: express.Request, res: express.Response): Principal | null => authenticate(req, res, keys, seen);

  r.get('/ui/session', (req, res) => {
    const p = who(req, res);
    if (!p) return;
    res.json({ keysRequired: guarded, tenant: p.tenant, keyId: p.keyId, scopes: p.scopes, platform: isPlatform(p), canSubmit: allows(p, 'submit') });
  });

  const index = new Map<string, { at: number; jobs: Promise<JobSummary[]> }>();
  r.get('/ui/jobs', async (req, res) => {
    const p = who(req, res);
    if (!p) return;
    if (!redis) return void noRedis(res);
    const now = Date.now();
    for (const [t, e] of index) if (now - e.at > INDEX_CACHE_MS) index.delete(t);
    let entry = index.get(p.tenant);
    if (!entry) {
      entry = { at: now, jobs: listJobs(queues, redis, p.tenant) };
      entry.jobs.catch(() => index.delete(p.tenant));
      index.set(p.tenant, entry);
    }
    res.json({ data: await entry.jobs });
  });

  // Every worker's figures name every tenant's models: for platform operators, like /metrics.
  r.get('/ui/workers', async (req, res) => {
    const p = who(req, res);
    if (!p) return;
    if (!redis) return void noRedis(res);
    if (!isPlatform(p))
      return void res
        .status(403)
        .json({ error: { code: 'forbidden', message: 'worker figures cover every tenant: they need a key with the "platform" scope' } });
    const workers = await readWorkerStats(redis, queues.prefix);
    const shown = JOB_QUEUES.concat(['score', 'infer', 'batch', 'model', 'score-gpu', 'infer-gpu']);
    const consumers = queueConsumers(workers, shown);
    const counts = await Promise.all(
      shown.map(
        async (q) =>
          [
            q,
            {
              ...(await queues.queue(q).getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed')),
              ...consumers[q],
            },
          ] as const,
      ),
    );
    res.json({ now: Date.now(), workers, queues: Object.fromEntries(counts) });
  });

  r.post('/ui/tickets', express.json({ limit: '4kb' }), (req, res) => {
    const p = who(req, res);
    if (!p) return;
    const path = (req.body as { path?: unknown } | undefined)?.path;
    if (typeof path !== 'string' || !/^\/api\/v[12]\/[\w./@-]{1,400}$/.test(path)) {
      return void res.status(400).json({ error: { code: 'bad_request', message: 'path must be an /api/v1/... or /api/v2/... path' } });
    }
    const key = presentedKey(req.headers.authorization);
    res.json({ ticket: key ? tickets.issue(key, path) : null });
  });

  return r;
}

// Verified erasure: a dataset, a model version, a batch or a range of payload logs removed with every
// stored byte and record of it (store objects under its prefixes, Redis records, index entries, the
// BullMQ jobs that made or read it and their event-stream entries, in-process caches), and workers
// told to drop what they hold (sessions, cached downloads). Each erasure returns a report of what went
// and is written to the audit stream. Dependents of a dataset are found through lineage: versions
// trained, measured or calibrated on it, and versions compressed from those, recursively.
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { AuditStream } from './audit-stream.ts';
import { ALL_QUEUES, type QueueName } from './config.ts';
import { DatasetStore } from './datasets.ts';
import { forgetProfile } from './drift/index.ts';
import { deleteLogRange } from './payload-logs.ts';
import { AppError, notFound } from './errors.ts';
import { BatchStore } from './batches.ts';
import { batchKeys } from './jobs/batch.ts';
import { jobCancelKey } from './jobs/train.ts';
import { modelArtifactKey, type Registry, type VersionRecord } from './registry.ts';
import { rolloutSchedulerId } from './rollouts.ts';
import type { ArtifactStore } from './storage/index.ts';

/** Objects listed under one prefix at most (an erasure's work is bounded; a larger prefix is still deleted whole). */
const LIST_LIMIT = 100_000;
/** BullMQ jobs of a queue read at most when looking for those that reference an erased item. */
const JOB_SCAN_LIMIT = 10_000;
/** Event-stream entries read at most per queue. */
const EVENT_SCAN_LIMIT = 50_000;

export type ErasedKind = 'dataset' | 'model-version' | 'batch' | 'logs';

export interface ErasureReport {
  erased: { kind: ErasedKind; id: string }[];
  /** Store objects deleted (keys). */
  objects: string[];
  /** Redis keys deleted whole. */
  redisKeys: string[];
  /** Entries removed from Redis keys that stay (a set member, a hash field, a stream entry): `<key> <member>`. */
  redisEntries: string[];
  /** BullMQ jobs removed (`queue:id`), with their keys. */
  jobs: string[];
  /** Model digests that workers were told to drop (sessions, cached files). */
  workerCaches: string[];
  /** What is not the platform's to erase (a batch's output written by reference to the client's own location). */
  notErased: string[];
  counts: { objects: number; redisKeys: number; redisEntries: number; jobs: number };
}

export const newReport = (): ErasureReport => ({
  erased: [],
  objects: [],
  redisKeys: [],
  redisEntries: [],
  jobs: [],
  workerCaches: [],
  notErased: [],
  counts: { objects: 0, redisKeys: 0, redisEntries: 0, jobs: 0 },
});

const finish = (r: ErasureReport): ErasureReport => {
  r.counts = { objects: r.objects.length, redisKeys: r.redisKeys.length, redisEntries: r.redisEntries.length, jobs: r.jobs.length };
  return r;
};

/** The Pub/Sub channel on which erasures tell every worker what to drop. */
export const erasureEventsChannel = (prefix: string) => `${prefix}:events:erasures`;
export const erasureEventSchema = z.object({
  /** Digests no remaining version has: sessions and cached downloads to drop. */
  sha256: z.array(z.string()),
  /** Store keys erased: in-memory copies (drift profiles) to forget. */
  keys: z.array(z.string()),
  /** Labels the version's work was counted under in a worker's figures (`name@version`, `name@train`). */
  labels: z.array(z.string()).default([]),
});
export type ErasureEvent = z.input<typeof erasureEventSchema>;

export interface Dependent {
  name: string;
  version: number;
  /** `trained` on the dataset; `measured` (compressed, measured or calibrated on its rows); `derived` from another dependent. */
  relation: 'trained' | 'measured' | 'derived';
  parent?: { name: string; version: number };
}

interface Lineage {
  source?: string;
  dataset?: unknown;
  job?: unknown;
  parent?: { name: string; version: number };
}
const lineageOf = (v: VersionRecord) => (v.lineage ?? {}) as Lineage;
const ref = (name: string, version: number) => `${name}@${version}`;

/** Store objects a version's record names (besides the job that made it). */
function versionObjects(v: VersionRecord): string[] {
  return [modelArtifactKey(v.sha256), v.explain?.background?.key, v.explain?.reference?.key, v.heldout?.key].filter((k): k is string => !!k);
}

/** The prefix under which a tenant's payload logs of a model (or all its models) lie. */
export const logsPrefix = (tenant: string, model?: string) => (model ? `logs/${tenant}/${model}/` : `logs/${tenant}/`);

export interface EraserDeps {
  redis: Redis;
  /** The hash-tagged key prefix ({modelq}) of records and queues alike. */
  prefix: string;
  store: ArtifactStore;
  registry: Registry;
  queue: (name: QueueName) => Queue;
  audit?: AuditStream;
}

/** Who asked (for the audit stream): a tenant's key, or the retention job. */
export interface Actor {
  tenant: string | null;
  keyId: string | null;
}

export class Eraser {
  private readonly datasets: DatasetStore;
  private readonly batches: BatchStore;

  constructor(private readonly d: EraserDeps) {
    this.datasets = new DatasetStore(d.redis, d.prefix);
    this.batches = new BatchStore(d.redis, d.prefix);
  }

  /** Every version trained, measured or calibrated on the dataset, and every version derived from those (children of children), parents first. */
  async dependents(datasetId: string): Promise<Dependent[]> {
    const all = (await this.d.registry.listModels()).flatMap((m) => m.versions);
    const found = new Map<string, Dependent>();
    for (const v of all) {
      const l = lineageOf(v);
      if (l.dataset === datasetId)
        found.set(ref(v.name, v.version), { name: v.name, version: v.version, relation: l.source === 'train' ? 'trained' : 'measured' });
    }
    for (let grew = true; grew;) {
      grew = false;
      for (const v of all) {
        const p = lineageOf(v).parent;
        if (!p || found.has(ref(v.name, v.version)) || !found.has(ref(p.name, p.version))) continue;
        found.set(ref(v.name, v.version), { name: v.name, version: v.version, relation: 'derived', parent: { name: p.name, version: p.version } });
        grew = true;
      }
    }
    return [...found.values()];
  }

  /** Erases a dataset; with `cascade`, its dependents first (children before parents). Without it, dependents are a 409 naming them. */
  async eraseDataset(id: string, opts: { cascade: boolean; actor: Actor }): Promise<ErasureReport> {
    const rec = await this.datasets.get(id);
    if (!rec) throw notFound(`dataset "${id.slice(0, 60)}" not found`);
    const deps = await this.dependents(id);
    if (deps.length && !opts.cascade)
      throw new AppError(
        'conflict',
        `dataset ${id} has dependents: ${deps
          .slice(0, 20)
          .map((x) => ref(x.name, x.version))
          .join(', ')}${deps.length > 20 ? ', ...' : ''}; erase them first or pass ?cascade=true`,
      );
    const r = newReport();
    // Children before parents: a parent's lineage is what finds its children.
    for (const dep of deps.reverse()) await this.versionInto(r, dep.name, dep.version, opts.actor);
    await this.deletePrefix(r, `datasets/${id}/`);
    const tenant = rec.tenant ?? 'default';
    await this.delKeys(r, [`${this.d.prefix}:records:dataset:${id}`]);
    await this.zrem(r, `${this.d.prefix}:records:datasets`, id);
    await this.zrem(r, `${this.d.prefix}:records:datasets:tenant:${tenant}`, id);
    // Jobs that read it (training, compression measured on it), finished or failed, with their files.
    for (const q of ['train', 'compress'] as const) {
      for (const job of await this.jobsWhere(q, (data) => JSON.stringify(data).includes(id))) await this.removeJob(r, q, job.id!);
    }
    r.erased.push({ kind: 'dataset', id });
    await this.audit(opts.actor, 'dataset', `/v1/datasets/${id}`, r);
    return finish(r);
  }

  /** Erases one model version (not its dependents: they keep their own bytes and records). */
  async eraseVersion(name: string, version: number, actor: Actor): Promise<ErasureReport> {
    const r = newReport();
    await this.versionInto(r, name, version, actor);
    return finish(r);
  }

  private async versionInto(r: ErasureReport, name: string, version: number, actor: Actor): Promise<void> {
    const p = this.d.prefix;
    const v = await this.d.registry.getVersion(name, version);
    const others = (await this.d.registry.listModels()).flatMap((m) => m.versions).filter((x) => !(x.name === name && x.version === version));
    const sameBytes = others.find((x) => x.sha256 === v.sha256);
    const stillNamed = new Set(others.flatMap(versionObjects));

    const rec = await this.d.registry.removeVersion(name, version, sameBytes);
    r.redisKeys.push(...rec.keys);
    r.redisEntries.push(...rec.entries);
    // Figures, drift windows and shadow comparisons of this version.
    await this.delKeys(r, [
      `${p}:records:figures:${name}:${version}`,
      ...(await this.scan(`${p}:records:drift:${name}:${version}:*`)),
      ...(await this.scan(`${p}:records:compare:${name}:*`)).filter((k) => rec.modelGone || k.split(':').slice(-2).includes(String(version))),
    ]);
    await this.srem(r, `${p}:records:drift:versions`, ref(name, version));
    if (rec.modelGone) {
      // Rollouts of a model that is gone: their records, audit trails and schedulers.
      const ids = await this.d.redis.zrange(`${p}:records:rollouts:${name}`, 0, -1);
      for (const id of ids) await this.d.queue('model').removeJobScheduler(rolloutSchedulerId(name, id));
      await this.delKeys(r, [
        `${p}:records:model:${name}:logging`,
        `${p}:records:rollouts:${name}`,
        ...(await this.scan(`${p}:records:rollout:${name}:*`)),
        ...(await this.scan(`${p}:records:rollout-active:${name}:*`)),
      ]);
    }
    // Its payload logs, whoever sent the requests (logs/<tenant>/<name>/<version>/).
    for (const t of await this.logTenants())
      r.objects.push(...(await deleteLogRange(this.d.store, { tenant: t, model: name, version }, {}, { limit: LIST_LIMIT })).deleted);
    // Its bytes, unless another version has the same ones.
    const gone = versionObjects(v).filter((k) => !stillNamed.has(k));
    for (const k of gone) await this.deleteObject(r, k);
    const l = lineageOf(v);
    if (typeof l.job === 'string') await this.removeJob(r, l.source === 'train' ? 'train' : 'compress', l.job);
    // An upload's check (`model` queue) named its digest.
    if (!sameBytes)
      for (const job of await this.jobsWhere('model', (data) => (data as { sha256?: unknown }).sha256 === v.sha256)) await this.removeJob(r, 'model', job.id!);
    // Caches: this process's drift profiles now, every worker's sessions and downloads by message.
    for (const k of gone) forgetProfile(this.d.store, k);
    const labels = [ref(name, version), ...(l.source === 'train' ? [`${name}@train`] : [])];
    const event: ErasureEvent = { sha256: sameBytes ? [] : [v.sha256], keys: gone, labels };
    await this.d.redis.publish(erasureEventsChannel(p), JSON.stringify(event));
    if (!sameBytes) r.workerCaches.push(v.sha256);
    r.erased.push({ kind: 'model-version', id: ref(name, version) });
    await this.audit(actor, 'model-version', `/v1/models/${name}/versions/${version}`, r);
  }

  /** Erases a batch: its input, outputs and error files, its records and its jobs (flow and chunks). */
  async eraseBatch(id: string, actor: Actor): Promise<ErasureReport> {
    const spec = await this.batches.spec(id);
    if (!spec) throw notFound(`batch "${id.slice(0, 60)}" not found`);
    const r = newReport();
    await this.deletePrefix(r, `${batchKeys.dir(id)}/`);
    const p = this.d.prefix;
    const tenant = spec.tenant ?? 'default';
    await this.delKeys(r, [`${p}:records:batch:${id}`, `${p}:records:batch:${id}:chunks`, `${p}:records:batch:${id}:progress`]);
    await this.zrem(r, `${p}:records:batches`, id);
    await this.zrem(r, `${p}:records:batches:tenant:${tenant}`, id);
    await this.removeJob(r, 'batch', id);
    // A streamed upload's gate job (`<id>-upload`, producer/batches/upload-stream.ts) and its events.
    await this.removeJob(r, 'batch', `${id}-upload`, false);
    await this.purgeEvents(r, 'batch', (f) => f.startsWith(`${id}-`));
    for (const q of ['score', 'score-gpu'] as const) for (let i = 0; i < spec.chunks; i++) await this.removeJob(r, q, `${id}-${i}`, false);
    await this.purgeEvents(r, 'score', (f) => f.startsWith(`${id}-`));
    await this.purgeEvents(r, 'score-gpu', (f) => f.startsWith(`${id}-`));
    if (spec.output) r.notErased.push(`the output written by reference to ${spec.output.uri} (the client's location)`);
    r.erased.push({ kind: 'batch', id });
    await this.audit(actor, 'batch', `/v1/batches/${id}`, r);
    return finish(r);
  }

  /**
   * Erases payload-log records of `model` (every model when absent) timed in [from, to] (epoch ms,
   * inclusive; core/payload-logs.ts deleteLogRange): the tenant's, or every tenant's when `tenant` is null.
   */
  async eraseLogs(tenant: string | null, model: string | undefined, from: number, to: number, actor: Actor): Promise<ErasureReport> {
    const r = newReport();
    const prefix = tenant === null ? 'logs/' : logsPrefix(tenant, model);
    // Every tenant's logs (a platform key): the tenants are the first segment under logs/.
    const tenants = tenant !== null ? [tenant] : await this.logTenants();
    for (const t of tenants) {
      // Parts wholly inside [from, to] go; a part that straddles an end is rewritten without the range's records.
      const e = await deleteLogRange(this.d.store, { tenant: t, ...(model ? { model } : {}) }, { from, to }, { limit: LIST_LIMIT });
      r.objects.push(...e.deleted, ...e.rewritten.map((w) => w.from));
    }
    r.erased.push({
      kind: 'logs',
      id: `${prefix}${tenant === null && model ? `*/${model}/` : ''} ${new Date(from).toISOString()}..${new Date(to).toISOString()}`,
    });
    await this.audit(actor, 'logs', `/v1/models/${model ?? '*'}/logs`, r);
    return finish(r);
  }

  /** The tenants that have payload logs: the first segment under logs/. */
  async logTenants(): Promise<string[]> {
    const keys = (await this.d.store.list('logs/', LIST_LIMIT)).map((o) => o.key.split('/')[1]);
    return [...new Set(keys.filter((t): t is string => !!t))];
  }

  /** BullMQ jobs of `q` whose data passes `test`, in any state, up to JOB_SCAN_LIMIT. */
  async jobsWhere(q: QueueName, test: (data: unknown) => boolean) {
    const jobs = await this.d.queue(q).getJobs(['completed', 'failed', 'wait', 'delayed', 'prioritized', 'waiting-children', 'active'], 0, JOB_SCAN_LIMIT - 1);
    return jobs.filter((j) => j && test(j.data));
  }

  /** Removes a job (its hash, logs and place in the state lists), its files and cancel flag, and its event-stream entries. */
  async removeJob(r: ErasureReport, q: QueueName, id: string, purge = true): Promise<void> {
    const job = await this.d.queue(q).getJob(id);
    if (job) {
      try {
        await job.remove();
      } catch (e) {
        throw new AppError('conflict', `job ${id} on queue ${q} is running and cannot be erased yet (${(e as Error).message}); retry once it ends`);
      }
      r.jobs.push(`${q}:${id}`);
    }
    if (q === 'train' || q === 'compress') await this.deletePrefix(r, `jobs/${q}/${id}/`);
    await this.delKeys(r, [jobCancelKey(this.d.prefix, id)]);
    if (purge) await this.purgeEvents(r, q, (f) => f === id);
  }

  /** Deletes the entries of a queue's event stream whose job id passes `test` (their return values may name what was erased). */
  private async purgeEvents(r: ErasureReport, q: QueueName, test: (jobId: string) => boolean): Promise<void> {
    if (!ALL_QUEUES.includes(q)) return;
    const key = `${this.d.prefix}:${q}:events`;
    let start = '-';
    let read = 0;
    while (read < EVENT_SCAN_LIMIT) {
      const page = (await this.d.redis.xrange(key, start, '+', 'COUNT', 1000)) as [string, string[]][];
      if (!page.length) break;
      read += page.length;
      const drop: string[] = [];
      for (const [entryId, flat] of page) {
        for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i] === 'jobId' && test(flat[i + 1]!)) drop.push(entryId);
      }
      if (drop.length) {
        await this.d.redis.xdel(key, ...drop);
        r.redisEntries.push(...drop.map((e) => `${key} ${e}`));
      }
      if (page.length < 1000) break;
      start = `(${page[page.length - 1]![0]}`;
    }
  }

  private async scan(pattern: string): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.d.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
    return out;
  }

  private async delKeys(r: ErasureReport, keys: string[]): Promise<void> {
    for (const k of new Set(keys)) if (await this.d.redis.unlink(k)) r.redisKeys.push(k);
  }

  private async zrem(r: ErasureReport, key: string, member: string): Promise<void> {
    if (await this.d.redis.zrem(key, member)) r.redisEntries.push(`${key} ${member}`);
  }

  private async srem(r: ErasureReport, key: string, member: string): Promise<void> {
    if (await this.d.redis.srem(key, member)) r.redisEntries.push(`${key} ${member}`);
  }

  private async deletePrefix(r: ErasureReport, prefix: string): Promise<void> {
    const objects = await this.d.store.list(prefix, LIST_LIMIT);
    if (!objects.length) return;
    await this.d.store.deletePrefix(prefix);
    r.objects.push(...objects.map((o) => o.key));
  }

  private async deleteObject(r: ErasureReport, key: string): Promise<void> {
    if (!(await this.d.store.stat(key))) return;
    await this.d.store.delete(key);
    r.objects.push(key);
  }

  private async audit(actor: Actor, kind: ErasedKind, target: string, r: ErasureReport): Promise<void> {
    await this.d.audit
      ?.append({
        actor: actor.tenant,
        keyId: actor.keyId,
        action: `ERASE ${kind}`,
        target,
        status: `erased (${r.objects.length} objects, ${r.redisKeys.length} keys, ${r.redisEntries.length} entries, ${r.jobs.length} jobs so far)`,
      })
      .catch(() => {});
  }
}

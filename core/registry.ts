// Model registry in Redis: every version of every model with its signature, aliases and lineage.
// The model bytes live in the artifact store under their sha256; Redis keeps only the records.
import type { Redis } from 'ioredis';
import { LUA, runLua } from './lua/scripts.ts';
import { z } from 'zod';
import type { ModelAccess } from './auth.ts';
import { AppError, badRequest, notFound } from './errors.ts';
import { type Signer, signatureSchema } from './signing.ts';
import { aliasRouteSchema, pickWeighted, primaryOf, type AliasRoute } from './routing.ts';
import { tensorSpecSchema } from './tensors.ts';
import { processingFileSchema, processingSchema, withFileHashes, type Processing, type ProcessingFile } from './processing/spec.ts';
import { pipelineSchema } from './processing/pipeline.ts';

export const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const ALIAS_RE = /^[a-z][a-z0-9._-]{0,63}$/;

export const modelConfigSchema = z
  .object({
    maxBatch: z.number().int().min(1).max(65_536).default(64),
    maxDelayMs: z.number().min(0).max(1000).default(2),
    instances: z.number().int().min(1).max(256).default(2),
  })
  .strict();
export type ModelConfig = z.output<typeof modelConfigSchema>;

export const versionRecordSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  sha256: z.string(),
  bytes: z.number().int(),
  inputs: z.array(tensorSpecSchema),
  outputs: z.array(tensorSpecSchema),
  createdAt: z.string(),
  lineage: z.record(z.string(), z.unknown()).optional(),
  metrics: z.record(z.string(), z.unknown()).optional(),
  /** What the version is: task, target, features and (classifiers) classes as JSON values; strings in versions from before lists. */
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** Artifact references for explanation (background rows) and drift (reference profile); the data lives in the store. */
  explain: z
    .object({
      background: z.object({ key: z.string(), rows: z.number().int(), features: z.number().int() }).optional(),
      reference: z.object({ key: z.string(), rows: z.number().int(), features: z.number().int() }).optional(),
    })
    .optional(),
  /** The held-out (validation) rows' true targets and predictions, stored as JSON, for the model card (trained versions). */
  heldout: z.object({ key: z.string(), rows: z.number().int() }).optional(),
  /** The platform's Ed25519 signature of `sha256` (core/signing.ts); absent on versions registered before signing. */
  signature: signatureSchema.optional(),
  /** An upload's signature by a trusted publisher key (MODELQ_TRUSTED_KEYS), when it carried one. */
  publisher: signatureSchema.optional(),
  /** Declared pre- and post-processing (core/processing/spec.ts): files in, labels out. */
  processing: processingSchema.optional(),
  /** A pipeline's steps (core/processing/pipeline.ts): the version runs them instead of one ONNX file; `sha256` is then the digest of the steps. */
  pipeline: pipelineSchema.optional(),
  /** Files the processing reads (a tokenizer.json), by name; the bytes live in the store (processingFileKey). */
  files: z.record(z.string(), processingFileSchema).optional(),
});
export type VersionRecord = z.infer<typeof versionRecordSchema>;
export type NewVersion = Omit<VersionRecord, 'name' | 'version' | 'createdAt'>;

/** A list in a version's metadata (`features`, `classes`): a JSON list, or in versions from before lists a JSON string of one. */
export function metadataList<T = unknown>(v: Pick<VersionRecord, 'metadata'>, key: string): T[] | undefined {
  const x = v.metadata?.[key];
  if (Array.isArray(x)) return x as T[];
  if (typeof x !== 'string' || !x) return undefined;
  try {
    const parsed = JSON.parse(x) as unknown;
    return Array.isArray(parsed) ? (parsed as T[]) : undefined;
  } catch {
    return undefined;
  }
}

export interface ModelRecord {
  name: string;
  versions: VersionRecord[];
  /** Each alias's version; for a weighted alias, its primary (most weight). */
  aliases: Record<string, number>;
  /** Weighted or shadowed aliases: their versions with weights, and shadow (absent when none). */
  routes?: Record<string, AliasRoute>;
  owner: string;
  shared: boolean;
}

export const modelArtifactKey = (sha256: string) => `models/sha256/${sha256}.onnx`;

export function checkName(name: string): string {
  if (!NAME_RE.test(name)) throw badRequest(`model name "${name.slice(0, 80)}" must match [a-z0-9][a-z0-9._-]{0,63}`);
  return name;
}

function checkAlias(alias: string): void {
  if (!ALIAS_RE.test(alias)) throw badRequest(`alias "${alias.slice(0, 80)}" must match [a-z][a-z0-9._-]{0,63}`);
}

/** Parses `name`, `name@alias` or `name@3`. */
export function parseRef(ref: string): { name: string; selector: string | number | null } {
  const at = ref.indexOf('@');
  const name = checkName(at < 0 ? ref : ref.slice(0, at));
  if (at < 0) return { name, selector: null };
  const sel = ref.slice(at + 1);
  if (/^[1-9][0-9]{0,8}$/.test(sel)) return { name, selector: Number(sel) };
  if (ALIAS_RE.test(sel)) return { name, selector: sel };
  throw badRequest(`model reference "${ref.slice(0, 100)}": after @ comes a version number or an alias`);
}

/**
 * A model registered before models had owners: it belongs to tenant "default" (what every caller
 * was then) and stays shared, so what served before still serves.
 */
export const LEGACY_ACCESS: ModelAccess = Object.freeze({ owner: 'default', shared: true });

/** Who creates a version: the owner of a new model; a platform operator may add to any model. */
export interface Publisher {
  tenant: string;
  platform?: boolean;
}

// A new version is created in one step by core/lua/registry-create-version.lua.

/** The Pub/Sub channel on which every new version is announced (workers load it before its first request). */
export const versionEventsChannel = (prefix: string) => `${prefix}:events:versions`;
export const versionEventSchema = z.object({ name: z.string(), version: z.number().int(), sha256: z.string(), bytes: z.number() });
export type VersionEvent = z.infer<typeof versionEventSchema>;

export interface RegistryOptions {
  /**
   * How long `serving()` answers from memory, in ms. Default 0 (always read Redis). The producer
   * uses ~1 s: three Redis round trips per online request cost more than the request's own work.
   * Writes through this instance drop the name at once; writes by other processes show after this.
   */
  servingCacheMs?: number;
  /** Whether a new model is readable by other tenants. Default false: a tenant's models are its own until shared. */
  sharedByDefault?: boolean;
  /** Signs the digest of every version this instance creates (core/signing.ts). Default: none (unsigned versions). */
  signer?: Signer;
}

/** Who signed a stored model digest, for workers that verify before loading. */
export interface DigestSignature {
  name: string;
  version: number;
  signature: z.infer<typeof signatureSchema>;
}

export interface ServingTarget {
  model: VersionRecord;
  config: ModelConfig;
  access: ModelAccess;
  /** Set when the reference was an alias with a shadow: the version mirrored requests run on, and their share. */
  shadow?: { target: ServingTarget; fraction: number };
}

/** What a reference resolves to before a request picks its version: one target, or a weighted split. */
interface ServingRoute {
  targets: ServingTarget[];
  weights: number[];
  salt: string;
}

const pick = (r: ServingRoute, key: string | undefined): ServingTarget => r.targets[pickWeighted(r.weights, key, r.salt)]!;

export class Registry {
  private readonly servingCacheMs: number;
  /** name -> ref -> lookup; the promise is shared so concurrent requests read Redis once. */
  private readonly serving_ = new Map<string, Map<string, { at: number; value: Promise<ServingRoute> }>>();

  private readonly sharedByDefault: boolean;
  private readonly signer: Signer | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    opts: RegistryOptions = {},
  ) {
    this.servingCacheMs = opts.servingCacheMs ?? 0;
    this.sharedByDefault = opts.sharedByDefault ?? false;
    this.signer = opts.signer;
  }

  // Under "records:" so no key can meet a BullMQ key of the `model` queue ({prefix}:model:<jobId>).
  private k(name: string, what: string) {
    return `${this.prefix}:records:model:${name}:${what}`;
  }
  private get modelsKey() {
    return `${this.prefix}:records:models`;
  }
  private get signaturesKey() {
    return `${this.prefix}:records:signatures`;
  }
  private get recentKey() {
    return `${this.prefix}:records:recent`;
  }

  /** Records that `name@version` served a request now (workers call it at most once a minute per version). */
  async markUsed(name: string, version: number): Promise<void> {
    await this.redis.multi().zadd(this.recentKey, Date.now(), `${name}@${version}`).zremrangebyrank(this.recentKey, 0, -1001).exec();
  }

  /** The versions used since `since` (epoch ms), most recent first, at most `limit`. */
  async recentlyUsed(since: number, limit: number): Promise<{ name: string; version: number; usedAt: number }[]> {
    const flat = await this.redis.zrevrangebyscore(this.recentKey, '+inf', since, 'WITHSCORES', 'LIMIT', 0, limit);
    const out: { name: string; version: number; usedAt: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const at = flat[i]!.lastIndexOf('@');
      const version = Number(flat[i]!.slice(at + 1));
      if (at > 0 && Number.isInteger(version)) out.push({ name: flat[i]!.slice(0, at), version, usedAt: Number(flat[i + 1]) });
    }
    return out;
  }

  /**
   * Creates the next version of `name`, or returns the version that already has these bytes. The
   * first version makes `by.tenant` the model's owner (default publisher: tenant "default"); another
   * tenant is refused (forbidden) unless it is a platform operator.
   */
  async createVersion(name: string, v: NewVersion, by: Publisher = { tenant: 'default' }): Promise<{ record: VersionRecord; created: boolean }> {
    checkName(name);
    const createdAt = new Date().toISOString();
    const signature = this.signer?.sign(v.sha256);
    const body = JSON.stringify({ ...v, ...(signature ? { signature } : {}), createdAt });
    const [version, created] = (await runLua(
      this.redis,
      LUA.registryCreateVersion,
      [this.k(name, 'versions'), this.k(name, 'sha'), this.k(name, 'aliases'), this.modelsKey, this.k(name, 'meta'), this.signaturesKey],
      [
        v.sha256,
        body,
        Date.now(),
        name,
        by.tenant,
        by.platform ? '1' : '0',
        this.sharedByDefault ? '1' : '0',
        versionEventsChannel(this.prefix),
        v.bytes,
        signature ? JSON.stringify(signature) : '',
      ],
    )) as [number, number];
    if (created === -1) throw new AppError('forbidden', `model "${name}" belongs to another tenant; only its owner can add versions`);
    if (created === 1) this.changed(name);
    const record = await this.getVersion(name, version);
    return { record, created: created === 1 };
  }

  /** The platform's signature of a stored model digest and the first version registered with it; null when unsigned. */
  async digestSignature(sha256: string): Promise<DigestSignature | null> {
    const json = await this.redis.hget(this.signaturesKey, sha256);
    if (!json) return null;
    const o = JSON.parse(json) as DigestSignature;
    return { name: o.name, version: Number(o.version), signature: signatureSchema.parse(o.signature) };
  }

  /** Owner and sharing of `name`, or null when no such model exists. */
  async access(name: string): Promise<ModelAccess | null> {
    checkName(name);
    const [meta, exists] = await Promise.all([this.redis.hgetall(this.k(name, 'meta')), this.redis.exists(this.k(name, 'versions'))]);
    if (!exists) return null;
    return meta.owner ? { owner: meta.owner, shared: meta.shared === '1' } : LEGACY_ACCESS;
  }

  /** Lets other tenants read and infer `name` (or stops it). The owner never changes. */
  async setShared(name: string, shared: boolean): Promise<void> {
    const a = await this.access(name);
    if (!a) throw notFound(`model "${name}" not found`);
    await this.redis.hset(this.k(name, 'meta'), 'owner', a.owner, 'shared', shared ? '1' : '0');
    this.changed(name);
  }

  /** The version of `name` that has exactly these bytes, if any. */
  async findVersionBySha(name: string, sha256: string): Promise<VersionRecord | null> {
    const v = await this.redis.hget(this.k(name, 'sha'), sha256);
    return v ? this.getVersion(name, Number(v)) : null;
  }

  /** Every model, or those `visible` lets through (a tenant's own and the shared ones). */
  async listModels(visible: (a: ModelAccess) => boolean = () => true): Promise<ModelRecord[]> {
    const names = await this.redis.zrange(this.modelsKey, 0, -1);
    const out: ModelRecord[] = [];
    for (const n of names) {
      const m = await this.findModel(n);
      if (m && visible(m)) out.push(m);
    }
    return out;
  }

  async findModel(name: string): Promise<ModelRecord | null> {
    checkName(name);
    const [versions, aliases, meta, routes] = await Promise.all([
      this.redis.hgetall(this.k(name, 'versions')),
      this.redis.hgetall(this.k(name, 'aliases')),
      this.redis.hgetall(this.k(name, 'meta')),
      this.redis.hgetall(this.k(name, 'routes')),
    ]);
    const list = Object.entries(versions)
      .map(([v, json]) => ({ name, version: Number(v), ...JSON.parse(json) }) as VersionRecord)
      .sort((a, b) => a.version - b.version);
    if (!list.length) return null;
    const access = meta.owner ? { owner: meta.owner, shared: meta.shared === '1' } : LEGACY_ACCESS;
    const out: ModelRecord = { name, versions: list, aliases: Object.fromEntries(Object.entries(aliases).map(([a, v]) => [a, Number(v)])), ...access };
    const routed = Object.entries(routes).filter(([a]) => a in aliases);
    if (routed.length) out.routes = Object.fromEntries(routed.map(([a, json]) => [a, aliasRouteSchema.parse(JSON.parse(json))]));
    return out;
  }

  async getModel(name: string): Promise<ModelRecord> {
    const m = await this.findModel(name);
    if (!m) throw notFound(`model "${name}" not found`);
    return m;
  }

  async getVersion(name: string, version: number): Promise<VersionRecord> {
    checkName(name);
    const json = await this.redis.hget(this.k(name, 'versions'), String(version));
    if (!json) {
      const exists = await this.redis.exists(this.k(name, 'versions'));
      throw notFound(exists ? `model "${name}" has no version ${version}` : `model "${name}" not found`);
    }
    return { name, version, ...JSON.parse(json) };
  }

  /**
   * Resolves `name`, `name@alias`, `name@N` to a version record; a bare name is the latest version.
   * A weighted alias picks one of its versions by `routeKey`'s hash (at random without one).
   */
  async resolve(ref: string, routeKey?: string): Promise<VersionRecord> {
    const { name, selector } = parseRef(ref);
    if (typeof selector === 'number') return this.getVersion(name, selector);
    const alias = selector ?? 'latest';
    const { version, route } = await this.aliasOf(name, alias);
    if (!route) return this.getVersion(name, version);
    const chosen =
      route.versions[
        pickWeighted(
          route.versions.map((v) => v.weight),
          routeKey,
          name,
        )
      ]!;
    return this.getVersion(name, chosen.version);
  }

  /** An alias's version and, for a weighted or shadowed alias, its route. */
  async aliasOf(name: string, alias: string): Promise<{ version: number; route?: AliasRoute }> {
    const [v, json] = await Promise.all([this.redis.hget(this.k(name, 'aliases'), alias), this.redis.hget(this.k(name, 'routes'), alias)]);
    if (!v) {
      const exists = await this.redis.exists(this.k(name, 'versions'));
      throw notFound(exists ? `model "${name}" has no alias "${alias}"` : `model "${name}" not found`);
    }
    return json ? { version: Number(v), route: aliasRouteSchema.parse(JSON.parse(json)) } : { version: Number(v) };
  }

  /**
   * What the online path needs per request: the version that serves it and the serving config
   * (cached, see servingCacheMs). A weighted alias picks its version by `routeKey` (see routing.ts).
   */
  serving(ref: string, routeKey?: string): Promise<ServingTarget> {
    if (this.servingCacheMs <= 0) return this.readServing(ref).then((r) => pick(r, routeKey));
    const { name } = parseRef(ref);
    let refs = this.serving_.get(name);
    if (!refs) this.serving_.set(name, (refs = new Map()));
    const now = Date.now();
    const hit = refs.get(ref);
    if (hit && now - hit.at < this.servingCacheMs) return hit.value.then((r) => pick(r, routeKey));
    const value = this.readServing(ref);
    const entry = { at: now, value };
    refs.set(ref, entry);
    // Errors (unknown model, Redis trouble) are not remembered: the next request asks again.
    value.catch(() => {
      if (refs.get(ref) === entry) refs.delete(ref);
    });
    return value.then((r) => pick(r, routeKey));
  }

  private async readServing(ref: string): Promise<ServingRoute> {
    const { name, selector } = parseRef(ref);
    const [config, access] = await Promise.all([this.getConfig(name), this.access(name)]);
    const target = (model: VersionRecord): ServingTarget => ({ model, config, access: access ?? LEGACY_ACCESS });
    if (typeof selector === 'number') return { targets: [target(await this.getVersion(name, selector))], weights: [100], salt: name };
    const { version, route } = await this.aliasOf(name, selector ?? 'latest');
    if (!route) return { targets: [target(await this.getVersion(name, version))], weights: [100], salt: name };
    const [models, shadowModel] = await Promise.all([
      Promise.all(route.versions.map((v) => this.getVersion(name, v.version))),
      route.shadow && route.shadow.fraction > 0 ? this.getVersion(name, route.shadow.version) : undefined,
    ]);
    const shadow = shadowModel && route.shadow ? { target: target(shadowModel), fraction: route.shadow.fraction } : undefined;
    return {
      targets: models.map((m) => (shadow && m.version !== shadow.target.model.version ? { ...target(m), shadow } : target(m))),
      weights: route.versions.map((v) => v.weight),
      salt: name,
    };
  }

  /** Drops cached serving lookups of `name` after a write through this instance. */
  private changed(name: string) {
    this.serving_.delete(name);
  }

  /**
   * Sets a version's background or drift reference. Read-modify-write of the record: two concurrent
   * writers of different fields of one version may lose one (admin-only and rare).
   */
  async setExplainArtifact(
    name: string,
    version: number,
    field: 'background' | 'reference',
    ref: { key: string; rows: number; features: number },
  ): Promise<VersionRecord> {
    const { name: _n, version: _v, ...rest } = await this.getVersion(name, version);
    const body = { ...rest, explain: { ...rest.explain, [field]: ref } };
    await this.redis.hset(this.k(name, 'versions'), String(version), JSON.stringify(body));
    this.changed(name);
    return { name, version, ...body };
  }

  /** Sets (or with null removes) a version's declared processing, already checked against its signature. */
  async setProcessing(name: string, version: number, processing: Processing | null): Promise<VersionRecord> {
    const { name: _n, version: _v, processing: _p, ...rest } = await this.getVersion(name, version);
    const body = processing ? { ...rest, processing } : rest;
    await this.redis.hset(this.k(name, 'versions'), String(version), JSON.stringify(body));
    this.changed(name);
    return { name, version, ...body };
  }

  /** Records (or with null removes) a file of a version's processing; a declared step reading it follows the new content. */
  async setProcessingFile(name: string, version: number, file: string, ref: ProcessingFile | null): Promise<VersionRecord> {
    const { name: _n, version: _v, files: old, ...rest } = await this.getVersion(name, version);
    const files = { ...old };
    if (ref) files[file] = ref;
    else delete files[file];
    const body = {
      ...rest,
      ...(Object.keys(files).length ? { files } : {}),
      ...(rest.processing ? { processing: withFileHashes(rest.processing, files) } : {}),
    };
    await this.redis.hset(this.k(name, 'versions'), String(version), JSON.stringify(body));
    this.changed(name);
    return { name, version, ...body };
  }

  async setAlias(name: string, alias: string, version: number): Promise<void> {
    checkAlias(alias);
    await this.getVersion(name, version);
    await this.redis.multi().hset(this.k(name, 'aliases'), alias, version).hdel(this.k(name, 'routes'), alias).exec();
    this.changed(name);
  }

  /**
   * Points `alias` at weighted versions and/or a shadow. Every version must exist and take the same
   * inputs (a request is checked against the version that serves it, and a shadow runs the primary's
   * request). The alias's plain version becomes the primary, so readers of `aliases` still see one.
   */
  async setAliasRoute(name: string, alias: string, route: AliasRoute): Promise<void> {
    checkAlias(alias);
    if (alias === 'latest') throw new AppError('conflict', 'alias "latest" is managed by the registry and cannot be weighted');
    const r = aliasRouteSchema.parse(route);
    const records = await Promise.all(r.versions.map((v) => this.getVersion(name, v.version)));
    const shadow = r.shadow ? await this.getVersion(name, r.shadow.version) : undefined;
    const sig = (v: VersionRecord) => JSON.stringify(v.inputs.map((i) => [i.name, i.datatype, i.shape]));
    for (const v of [...records.slice(1), ...(shadow ? [shadow] : [])]) {
      if (sig(v) !== sig(records[0]!))
        throw badRequest(
          `version ${v.version} takes other inputs than version ${records[0]!.version}; an alias splits or mirrors only between versions with the same inputs`,
        );
    }
    if (r.versions.length === 1 && !r.shadow) return this.setAlias(name, alias, r.versions[0]!.version);
    await this.redis.multi().hset(this.k(name, 'aliases'), alias, primaryOf(r)).hset(this.k(name, 'routes'), alias, JSON.stringify(r)).exec();
    this.changed(name);
  }

  async deleteAlias(name: string, alias: string): Promise<void> {
    if (alias === 'latest') throw new AppError('conflict', 'alias "latest" is managed by the registry and cannot be deleted');
    const res = await this.redis.multi().hdel(this.k(name, 'aliases'), alias).hdel(this.k(name, 'routes'), alias).exec();
    this.changed(name);
    if (!res?.[0]?.[1]) throw notFound(`model "${name}" has no alias "${alias}"`);
  }

  /**
   * Removes a version's records: its field in the versions and sha hashes, aliases and routes that
   * name it (`latest` moves to the newest remaining version), its use in the recency list, and the
   * digest's signature record (rewritten to name `sameBytes`, another version with these bytes, if
   * any). The last version takes the whole model with it: every `records:model:<name>:*` key and its
   * place in the models list. Returns what it removed, for the erasure report.
   */
  async removeVersion(name: string, version: number, sameBytes?: VersionRecord): Promise<{ keys: string[]; entries: string[]; modelGone: boolean }> {
    const v = await this.getVersion(name, version);
    const [versions, aliases, routes, shaOwner, sig] = await Promise.all([
      this.redis.hkeys(this.k(name, 'versions')),
      this.redis.hgetall(this.k(name, 'aliases')),
      this.redis.hgetall(this.k(name, 'routes')),
      this.redis.hget(this.k(name, 'sha'), v.sha256),
      this.digestSignature(v.sha256),
    ]);
    const remaining = versions.map(Number).filter((x) => x !== version);
    const keys: string[] = [];
    const entries: string[] = [];
    const m = this.redis.multi();
    if (!remaining.length) {
      const all = ['versions', 'sha', 'aliases', 'meta', 'config', 'routes'].map((w) => this.k(name, w));
      const present = (await Promise.all(all.map((k) => this.redis.exists(k)))).map((n, i) => (n ? all[i]! : null)).filter((k): k is string => !!k);
      if (present.length) m.del(...present);
      keys.push(...present);
      m.zrem(this.modelsKey, name);
      entries.push(`${this.modelsKey} ${name}`);
    } else {
      m.hdel(this.k(name, 'versions'), String(version));
      entries.push(`${this.k(name, 'versions')} ${version}`);
      if (shaOwner === String(version)) {
        m.hdel(this.k(name, 'sha'), v.sha256);
        entries.push(`${this.k(name, 'sha')} ${v.sha256}`);
      }
      for (const [alias, target] of Object.entries(aliases)) {
        const route = routes[alias] ? aliasRouteSchema.parse(JSON.parse(routes[alias])) : undefined;
        const named = Number(target) === version || !!route?.versions.some((x) => x.version === version) || route?.shadow?.version === version;
        if (!named) continue;
        if (alias === 'latest') {
          m.hset(this.k(name, 'aliases'), 'latest', Math.max(...remaining));
          continue;
        }
        m.hdel(this.k(name, 'aliases'), alias).hdel(this.k(name, 'routes'), alias);
        entries.push(`${this.k(name, 'aliases')} ${alias}`);
      }
    }
    if (sig && sig.name === name && sig.version === version) {
      if (sameBytes?.signature)
        m.hset(this.signaturesKey, v.sha256, JSON.stringify({ name: sameBytes.name, version: sameBytes.version, signature: sameBytes.signature }));
      else m.hdel(this.signaturesKey, v.sha256);
      entries.push(`${this.signaturesKey} ${v.sha256}`);
    }
    if ((await this.redis.zscore(this.recentKey, `${name}@${version}`)) !== null) {
      m.zrem(this.recentKey, `${name}@${version}`);
      entries.push(`${this.recentKey} ${name}@${version}`);
    }
    await m.exec();
    this.changed(name);
    return { keys, entries, modelGone: !remaining.length };
  }

  async getConfig(name: string): Promise<ModelConfig> {
    const json = await this.redis.get(this.k(name, 'config'));
    return modelConfigSchema.parse(json ? JSON.parse(json) : {});
  }

  async setConfig(name: string, cfg: ModelConfig): Promise<void> {
    await this.getModel(name);
    await this.redis.set(this.k(name, 'config'), JSON.stringify(cfg));
    this.changed(name);
  }
}

// API keys, their tenants and scopes. Keys are held only as sha256 digests and compared in
// constant time; logs carry a key id (a digest prefix), never the key.
import { createHash, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { type Config, exitOnConfigProblems } from './config.ts';

/**
 * read: GET routes; infer: online inference; submit: batches, datasets, jobs; publish: create model
 * versions (upload, or train/compress, which register one); admin: everything a tenant may do,
 * including aliases, serving config and sharing of the tenant's own models. platform: the platform's
 * operators (not a tenant's): the dashboard with every tenant's jobs, and any tenant's models.
 */
export const SCOPES = ['read', 'infer', 'submit', 'publish', 'admin', 'platform'] as const;
export type Scope = (typeof SCOPES)[number];

export interface Principal {
  tenant: string;
  keyId: string;
  scopes: Scope[];
}

/** Who a request is when the platform runs without keys. */
export const OPEN_PRINCIPAL: Principal = Object.freeze({ tenant: 'default', keyId: 'open', scopes: [...SCOPES] });

const keysSchema = z.record(
  z.string(),
  z
    .object({
      tenant: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, 'tenant must be 1-64 letters, digits, _ . -'),
      scopes: z.array(z.enum(SCOPES)).min(1),
    })
    .strict(),
);

interface KeyEntry extends Principal {
  digest: Buffer;
}

/** Keys travel in `Authorization: Bearer <key>`: long enough not to be guessed, and only characters a header carries as they are. */
export const MIN_KEY_LENGTH = 16;
const KEY_CHARS = /^[\x21-\x7e]+$/;
const KEY_RULE = `keys are ${MIN_KEY_LENGTH} or more printable ASCII characters without spaces (e.g. openssl rand -hex 24)`;

const digest = (key: string) => createHash('sha256').update(key).digest();

export class KeyRing {
  private constructor(private readonly entries: KeyEntry[]) {}

  get size() {
    return this.entries.length;
  }

  /** Reads MODELQ_API_KEYS or MODELQ_API_KEYS_FILE; throws a message naming the key on bad input. */
  static fromConfig(cfg: Pick<Config, 'MODELQ_API_KEYS' | 'MODELQ_API_KEYS_FILE'>): KeyRing {
    let raw = cfg.MODELQ_API_KEYS;
    let source = 'MODELQ_API_KEYS';
    if (!raw && cfg.MODELQ_API_KEYS_FILE) {
      source = 'MODELQ_API_KEYS_FILE';
      try {
        raw = fs.readFileSync(cfg.MODELQ_API_KEYS_FILE, 'utf8');
      } catch (e) {
        throw new Error(`${source}: cannot read ${cfg.MODELQ_API_KEYS_FILE}: ${(e as Error).message}`);
      }
    }
    if (!raw) return new KeyRing([]);
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch {
      throw new Error(`${source}: not valid JSON`);
    }
    if (json && typeof json === 'object' && !Array.isArray(json)) {
      const short = Object.keys(json).find((k) => k.length < MIN_KEY_LENGTH);
      if (short !== undefined)
        throw new Error(`${source}: every key must be at least ${MIN_KEY_LENGTH} characters long (one has ${short.length}); ${KEY_RULE}`);
      if (Object.keys(json).some((k) => !KEY_CHARS.test(k)))
        throw new Error(`${source}: a key has a space or a character outside printable ASCII; ${KEY_RULE}`);
    }
    const r = keysSchema.safeParse(json);
    // Name the field, never the key itself (it is a secret).
    if (!r.success)
      throw new Error(`${source}: ${r.error.issues.map((i) => `${i.path.length > 1 ? `<key>.${i.path.slice(1).join('.')}: ` : ''}${i.message}`).join('; ')}`);
    return new KeyRing(
      Object.entries(r.data).map(([key, v]) => {
        const d = digest(key);
        return { digest: d, keyId: d.toString('hex').slice(0, 12), tenant: v.tenant, scopes: [...new Set(v.scopes)] };
      }),
    );
  }

  /** For the processes' main files: the key ring, or the reason printed and exit EXIT_CONFIG (not restarted by `npm start`). */
  static fromConfigOrExit(cfg: Pick<Config, 'MODELQ_API_KEYS' | 'MODELQ_API_KEYS_FILE'>): KeyRing {
    try {
      return KeyRing.fromConfig(cfg);
    } catch (e) {
      return exitOnConfigProblems([(e as Error).message]);
    }
  }

  /** The principal of a presented key, or null. Compares against every key, in constant time each. */
  authenticate(key: string): Principal | null {
    const d = digest(key);
    let found: KeyEntry | null = null;
    for (const e of this.entries) if (timingSafeEqual(e.digest, d)) found = e;
    return found ? { tenant: found.tenant, keyId: found.keyId, scopes: found.scopes } : null;
  }
}

/**
 * platform grants everything; admin grants every tenant scope (not platform); the others only themselves.
 * A tenant's admin is not a platform operator: it never sees or acts on other tenants' work.
 */
export function allows(p: Principal, scope: Scope): boolean {
  if (p.scopes.includes('platform') || p.scopes.includes(scope)) return true;
  return scope !== 'platform' && p.scopes.includes('admin');
}

export const isPlatform = (p: Principal) => allows(p, 'platform');

/** Who owns a model and whether other tenants may read and infer it. */
export interface ModelAccess {
  owner: string;
  shared: boolean;
}

/** Reading and inferring: the owner, a platform operator, or anyone when the model is shared. */
export const canReadModel = (p: Principal, a: ModelAccess) => a.shared || a.owner === p.tenant || isPlatform(p);

/** Adding versions (with `publish`), aliases, config, sharing (with `admin`): the owner's keys or a platform operator. */
export const canWriteModel = (p: Principal, a: ModelAccess | null, scope: 'publish' | 'admin') =>
  allows(p, scope) && (a === null || a.owner === p.tenant || isPlatform(p));

/** The key from `Authorization: Bearer <key>` or, for browsers on the dashboard, basic auth with the key as password. */
export function presentedKey(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const [kind, value] = authorization.split(' ', 2);
  if (!value) return null;
  if (/^bearer$/i.test(kind!)) return value.trim();
  if (/^basic$/i.test(kind!)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    return i >= 0 ? decoded.slice(i + 1) : null;
  }
  return null;
}

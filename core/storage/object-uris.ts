// Objects named by URI for batches by reference: `s3://bucket/key` (read and written with the
// platform's own S3 settings and credentials, never a host from the request) or `store:key` (the
// artifact store the platform is configured with). Which prefixes a tenant may name is
// MODELQ_BATCH_ROOTS; this module parses, checks against roots and hands out a store per bucket.
import type { Config } from '../config.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { S3Store } from './s3-store.ts';

export type ObjectRef = { kind: 's3'; bucket: string; key: string } | { kind: 'store'; key: string };

/** A URI the platform will not touch (a scheme, host or path it does not take): the message says why. */
export class BadUriError extends Error {}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
/** A key segment: what the artifact stores take (checkKey); glob characters where allowed. */
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const GLOB_SEGMENT = /^[A-Za-z0-9._*?-]+$/;

/** Parses `uri`; `glob` allows `*`, `**` and `?` in key segments. The key may end with '/' (a prefix). */
export function parseObjectUri(uri: string, opts: { glob?: boolean } = {}): ObjectRef {
  let ref: ObjectRef;
  const s3 = /^s3:\/\/([^/]*)\/?(.*)$/.exec(uri);
  if (s3) {
    if (!BUCKET.test(s3[1]!)) throw new BadUriError(`"${uri.slice(0, 200)}" does not name a valid S3 bucket`);
    ref = { kind: 's3', bucket: s3[1]!, key: s3[2]! };
  } else if (uri.startsWith('store:')) {
    ref = { kind: 'store', key: uri.slice('store:'.length) };
  } else {
    throw new BadUriError(`"${uri.slice(0, 200)}" is neither s3://bucket/key nor store:key`);
  }
  const segments = ref.key.split('/');
  if (segments.at(-1) === '') segments.pop();
  const seg = opts.glob ? GLOB_SEGMENT : SEGMENT;
  for (const p of segments) {
    if (!seg.test(p) || p === '.' || p === '..')
      throw new BadUriError(
        `"${uri.slice(0, 200)}": the path segment "${p.slice(0, 100)}" is not allowed (letters, digits, . _ - only${opts.glob ? ', * ? in globs' : ''})`,
      );
  }
  return ref;
}

export const uriOf = (ref: ObjectRef, key = ref.key): string => (ref.kind === 's3' ? `s3://${ref.bucket}/${key}` : `store:${key}`);

/** The literal part of a key before its first wildcard. */
export const literalPrefix = (key: string): string => key.split(/[*?]/)[0]!;
export const isGlob = (key: string): boolean => /[*?]/.test(key);

/** A regular expression for a glob key: `*` and `?` stay within a segment, `**` crosses them. */
export function globRegExp(key: string): RegExp {
  let re = '';
  for (let i = 0; i < key.length; i++) {
    const c = key[i]!;
    if (c === '*' && key[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\=-]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Whether everything `ref` can name (its literal prefix) lies under one of the tenant's roots; a
 * root is a directory ("s3://b/acme/" never matches "s3://b/acme2/...").
 */
export function underRoots(ref: ObjectRef, roots: readonly string[]): boolean {
  const literal = uriOf(ref, literalPrefix(ref.key));
  return roots.some((root) => {
    const dir = root.endsWith('/') || root === 'store:' ? root : `${root}/`;
    return literal.startsWith(dir) || `${literal}/` === dir;
  });
}

/** The store holding a URI's objects: the platform's own, or one S3Store per bucket on the platform's S3 endpoint. */
export class ObjectStores {
  private readonly buckets = new Map<string, ArtifactStore>();
  constructor(
    private readonly platform: ArtifactStore,
    private readonly cfg: Partial<Pick<Config, 'MODELQ_S3_ENDPOINT' | 'MODELQ_S3_REGION'>>,
  ) {}

  of(ref: ObjectRef): ArtifactStore {
    if (ref.kind === 'store') return this.platform;
    let s = this.buckets.get(ref.bucket);
    if (!s) {
      s = new S3Store({
        bucket: ref.bucket,
        ...(this.cfg.MODELQ_S3_ENDPOINT ? { endpoint: this.cfg.MODELQ_S3_ENDPOINT } : {}),
        ...(this.cfg.MODELQ_S3_REGION ? { region: this.cfg.MODELQ_S3_REGION } : {}),
      });
      this.buckets.set(ref.bucket, s);
    }
    return s;
  }

  /** The store and key of a URI already checked at submit (jobs carry URIs). */
  resolve(uri: string): { store: ArtifactStore; key: string } {
    const ref = parseObjectUri(uri);
    return { store: this.of(ref), key: ref.key };
  }
}

// Weighted aliases: an alias may split its traffic over up to 4 versions by weight, and name a
// shadow version that sees a share of the requests after the primary answered. The choice of a
// version is a pure function of the weights and a request key, so one key always lands on one
// version while the weights stay, and a key that moves when a candidate's share grows only moves
// to the candidate (the candidate's range of hashes is the last one and only widens).
import { z } from 'zod';

export const MAX_ROUTE_VERSIONS = 4;

export const aliasRouteSchema = z
  .object({
    versions: z
      .array(z.object({ version: z.number().int().min(1), weight: z.number().int().min(0).max(100) }).strict())
      .min(1)
      .max(MAX_ROUTE_VERSIONS, `versions: at most ${MAX_ROUTE_VERSIONS} versions`)
      .refine((vs) => vs.reduce((s, v) => s + v.weight, 0) === 100, 'versions: the weights must add up to 100')
      .refine((vs) => new Set(vs.map((v) => v.version)).size === vs.length, 'versions: each version may appear once'),
    shadow: z
      .object({
        version: z.number().int().min(1),
        fraction: z.number().min(0).max(1).meta({ description: 'Share of the requests mirrored to the shadow version (0..1)' }),
      })
      .strict()
      .optional(),
  })
  .strict();
export type AliasRoute = z.infer<typeof aliasRouteSchema>;

/** The version an alias names for reads that take one (metadata, lists, `latest`): the one with most weight, the first on a tie. */
export function primaryOf(r: AliasRoute): number {
  let best = r.versions[0]!;
  for (const v of r.versions) if (v.weight > best.weight) best = v;
  return best.version;
}

/** FNV-1a over the UTF-16 code units, then murmur3's finalizer so close keys ("k1", "k2") spread. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Index of the chosen entry of `weights` (percent, adding up to 100): by `key`'s hash (salted with
 * the model name, so two models' splits are independent), else at random.
 */
export function pickWeighted(weights: readonly number[], key: string | undefined, salt = ''): number {
  if (weights.length === 1) return 0;
  const u = key === undefined || key === '' ? Math.random() : hash32(`${salt}\u0000${key}`) / 2 ** 32;
  let edge = 0;
  for (let i = 0; i < weights.length; i++) {
    edge += weights[i]! / 100;
    if (u < edge) return i;
  }
  // Rounding at the top end: the last entry with weight.
  for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
  return 0;
}

/** The request key of a route: the `x-modelq-route-key` header (gRPC: metadata), else the protocol request id. */
export const ROUTE_KEY_HEADER = 'x-modelq-route-key';
/** Names the version that answered, on REST answers (gRPC: trailing metadata of the same name). */
export const VERSION_HEADER = 'x-modelq-model-version';
/** Route keys longer than this are cut (only their hash matters). */
export const MAX_ROUTE_KEY = 256;

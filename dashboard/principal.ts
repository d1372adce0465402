// Who a dashboard request is: the key from the Authorization header (bearer, or basic auth with the
// key as password), checked against the same key ring as the producer's.
import type { Request, Response } from 'express';
import { type KeyRing, OPEN_PRINCIPAL, presentedKey, type Principal } from '../core/auth.ts';

/** Principals by request, for the audit line written when the response ends. */
export type Authenticated = WeakMap<Request, Principal>;

/**
 * The request's principal, or null after answering 401. Without keys everyone is the open principal.
 * basicChallenge: ask the browser for credentials (bull-board's pages); the UI's JSON calls do not,
 * so the browser's own password dialog never pops up over the UI's key form.
 */
export function authenticate(
  req: Request,
  res: Response,
  keys: KeyRing | undefined,
  seen: Authenticated,
  opts: { basicChallenge?: boolean } = {},
): Principal | null {
  if (!keys || keys.size === 0) {
    seen.set(req, OPEN_PRINCIPAL);
    return OPEN_PRINCIPAL;
  }
  const key = presentedKey(req.headers.authorization);
  const p = key ? keys.authenticate(key) : null;
  if (!p) {
    if (opts.basicChallenge) res.setHeader('WWW-Authenticate', 'Basic realm="modelq dashboard"');
    res.status(401).json({ error: { code: 'unauthorized', message: key ? 'unknown API key' : 'an API key is required (basic auth password or bearer)' } });
    return null;
  }
  seen.set(req, p);
  return p;
}

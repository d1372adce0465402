// Model ownership at the HTTP edge: another tenant's private model is "not found" (its existence is
// not told); writing to another tenant's model is forbidden. The policy itself is in core/auth.ts.
import { canReadModel, canWriteModel, type ModelAccess, type Principal } from '../core/auth.ts';
import { AppError, notFound } from '../core/errors.ts';
import { parseRef, type Registry } from '../core/registry.ts';

/**
 * Throws 404 unless `who` may read and infer the model named by `ref` (name, name@alias, name@3).
 * `who` is a principal, or a bare tenant name (no platform powers).
 */
export async function assertReadable(registry: Registry, ref: string, who: Principal | string): Promise<void> {
  const { name } = parseRef(ref);
  const a = await registry.access(name);
  const p = typeof who === 'string' ? { tenant: who, keyId: '', scopes: [] } : who;
  if (!a || !canReadModel(p, a)) throw notFound(`model "${name}" not found`);
}

/** The same check on an access record already read (the online path has it from the serving cache). */
export function checkReadable(name: string, a: ModelAccess, p: Principal): void {
  if (!canReadModel(p, a)) throw notFound(`model "${name}" not found`);
}

/**
 * Throws unless `p` may change `name`: add versions (`publish`) or aliases, config, sharing
 * (`admin`). A model that does not exist yet may be created by any key with `publish`; it is then
 * the key's tenant's. Returns the model's access record (null: no such model yet).
 */
export async function assertWritable(registry: Registry, name: string, p: Principal, scope: 'publish' | 'admin'): Promise<ModelAccess | null> {
  const a = await registry.access(name);
  if (a && !canReadModel(p, a)) throw notFound(`model "${name}" not found`);
  if (!canWriteModel(p, a, scope)) {
    throw new AppError(
      'forbidden',
      a && a.owner !== p.tenant ? `model "${name}" belongs to another tenant; only its owner can change it` : `this key lacks the "${scope}" scope`,
    );
  }
  return a;
}

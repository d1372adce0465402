import { describe, expect, it } from 'vitest';
import { allows, canReadModel, canWriteModel, KeyRing, presentedKey, type Scope } from '../../../core/auth.ts';
import { requiredScope, requiredScopes } from '../../../producer/auth.ts';

const ring = (keys: unknown) => KeyRing.fromConfig({ MODELQ_API_KEYS: JSON.stringify(keys), MODELQ_API_KEYS_FILE: undefined });

describe('KeyRing', () => {
  it('authenticates keys to their tenant and scopes, with a key id that is not the key', () => {
    const r = ring({ 'secret-key-000000001': { tenant: 't1', scopes: ['read'] } });
    const p = r.authenticate('secret-key-000000001')!;
    expect(p).toMatchObject({ tenant: 't1', scopes: ['read'] });
    expect(p.keyId).toMatch(/^[0-9a-f]{12}$/);
    expect(p.keyId).not.toContain('secret');
    expect(r.authenticate('secret-key-000000002')).toBeNull();
    expect(allows(p, 'read')).toBe(true);
    expect(allows(p, 'infer')).toBe(false);
    expect(allows({ ...p, scopes: ['admin'] }, 'infer')).toBe(true);
  });

  it("keeps platform operators apart from a tenant's admin, and models with their owner", () => {
    const admin = { tenant: 'a', keyId: 'k1', scopes: ['admin'] as Scope[] };
    const ops = { tenant: 'ops', keyId: 'k2', scopes: ['platform'] as Scope[] };
    expect(allows(admin, 'publish')).toBe(true);
    expect(allows(admin, 'platform')).toBe(false);
    expect(allows(ops, 'admin')).toBe(true);
    const own = { owner: 'a', shared: false };
    const b = { tenant: 'b', keyId: 'k3', scopes: ['admin'] as Scope[] };
    expect(canReadModel(b, own)).toBe(false);
    expect(canReadModel(b, { ...own, shared: true })).toBe(true);
    expect(canWriteModel(b, { ...own, shared: true }, 'admin')).toBe(false);
    expect(canWriteModel(admin, own, 'admin')).toBe(true);
    expect(canWriteModel(ops, own, 'admin')).toBe(true);
    expect(canWriteModel({ ...b, scopes: ['submit'] }, null, 'publish')).toBe(false);
    expect(canWriteModel({ ...b, scopes: ['publish'] }, null, 'publish')).toBe(true);
  });

  it('rejects bad key files with a message naming what is wrong', () => {
    expect(() => ring({ short: { tenant: 't', scopes: ['read'] } })).toThrow(/MODELQ_API_KEYS.*at least 16/);
    expect(() => ring({ 'long-enough-key-0001': { tenant: 't', scopes: ['root'] } })).toThrow(/MODELQ_API_KEYS/);
    expect(() => KeyRing.fromConfig({ MODELQ_API_KEYS: '{nope', MODELQ_API_KEYS_FILE: undefined })).toThrow(/not valid JSON/);
    expect(() => KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: '/nonexistent/keys.json' })).toThrow(
      /MODELQ_API_KEYS_FILE: cannot read/,
    );
    expect(KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }).size).toBe(0);
  });

  it('reads bearer and basic credentials', () => {
    expect(presentedKey('Bearer abc')).toBe('abc');
    expect(presentedKey(`Basic ${Buffer.from('user:the-key').toString('base64')}`)).toBe('the-key');
    expect(presentedKey('Token abc')).toBeNull();
    expect(presentedKey(undefined)).toBeNull();
  });
});

describe('requiredScope', () => {
  it.each([
    ['GET', '/v2/health/ready', null],
    ['GET', '/v1/models', 'read'],
    ['GET', '/metrics', 'platform'],
    ['POST', '/v2/models/m/infer', 'infer'],
    ['POST', '/v2/models/m/versions/2/infer', 'infer'],
    ['POST', '/v1/models/m:predict', 'infer'],
    ['POST', '/v1/models/m/versions/2:explain', 'infer'],
    ['POST', '/v1/models/m/versions/2:publish', 'admin'],
    ['POST', '/v1/batches', 'submit'],
    ['POST', '/v1/batches/x/cancel', 'submit'],
    ['POST', '/v1/jobs/train', 'submit'],
    ['POST', '/v1/datasets', 'submit'],
    ['POST', '/v1/models/m/versions', 'publish'],
    ['PUT', '/v1/models/m/aliases/p', 'admin'],
    ['DELETE', '/v1/models/m/aliases/p', 'admin'],
    ['PUT', '/v1/models/m/config', 'admin'],
    ['PATCH', '/v1/anything', 'admin'],
  ])('%s %s needs %s', (method, path, scope) => {
    expect(requiredScope(method, path)).toBe(scope);
  });

  it('asks publish as well as submit of training and compression, which always register a version', () => {
    expect(requiredScopes('POST', '/v1/jobs/train')).toEqual(['submit', 'publish']);
    expect(requiredScopes('POST', '/v1/jobs/compress')).toEqual(['submit', 'publish']);
    expect(requiredScopes('POST', '/v1/jobs/x/cancel')).toEqual(['submit']);
  });
});

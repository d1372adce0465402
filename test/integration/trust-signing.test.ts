// Signed models: every registered version carries the platform's Ed25519 signature of its digest,
// downloads carry it, `modelq verify` checks a file offline, a worker refuses a stored model whose
// bytes were altered (naming the version), and a tenant whose policy requires publisher
// signatures gets 403 for an unsigned or untrusted upload.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelArtifactKey, type VersionRecord } from '../../core/registry.ts';
import { Signer, verifyDigest } from '../../core/signing.ts';
import { tinyMlp, tmpDir } from '../fixtures/models.ts';
import { postJson, startPlatform, type TestPlatform } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const ADMIN = 'k-platform-0123456789abcdef';
const ACME = 'k-acme-0123456789abcdef01';
const dir = tmpDir('modelq-sign');
const keyFile = path.join(dir, 'platform.pem');
const publisherPem = path.join(dir, 'publisher.pem');
const publisherKey = generateKeyPairSync('ed25519').privateKey;
const publisher = new Signer(publisherKey);
const stranger = Signer.generate();
fs.writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
fs.writeFileSync(publisherPem, publisherKey.export({ type: 'pkcs8', format: 'pem' }));

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({
    env: {
      MODELQ_SIGNING_KEY_FILE: keyFile,
      MODELQ_TRUSTED_KEYS: publisher.publicKey,
      MODELQ_REQUIRE_SIGNED_UPLOADS: 'acme',
      MODELQ_API_KEYS: JSON.stringify({
        [ADMIN]: { tenant: 'ops', scopes: ['read', 'infer', 'publish', 'admin', 'platform'] },
        [ACME]: { tenant: 'acme', scopes: ['read', 'infer', 'publish'] },
      }),
    },
  });
});
afterAll(async () => {
  await p?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const upload = (name: string, bytes: Uint8Array, key: string, headers: Record<string, string> = {}) =>
  fetch(`${p.url}/v1/models/${name}/versions`, {
    method: 'POST',
    body: Buffer.from(bytes),
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${key}`, ...headers },
  });

const cli = (args: string[]) => spawnSync(process.execPath, ['cli/bin.mjs', ...args], { cwd: ROOT, encoding: 'utf8' });

describe('signed models', () => {
  it('signs, serves the signature with downloads, verifies offline, and a worker refuses an altered model by name', async () => {
    // A worker that only checks uploads: no infer queue, so nothing loads the model ahead.
    const checker = await p.addWorker({ MODELQ_QUEUES: 'model' });
    const res = await upload('signed', tinyMlp(3), ADMIN);
    expect(res.status).toBe(201);
    const v = (await res.json()) as VersionRecord;
    expect(v.signature?.algorithm).toBe('ed25519');
    expect(verifyDigest(v.sha256, v.signature!.value, v.signature!.publicKey)).toBe(true);

    const dl = await fetch(`${p.url}/v1/models/signed/versions/1/onnx`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(dl.headers.get('x-modelq-signature')).toBe(v.signature!.value);
    const file = path.join(dir, 'signed.onnx');
    fs.writeFileSync(file, Buffer.from(await dl.arrayBuffer()));
    const ok = cli(['verify', file, '--signature', dl.headers.get('x-modelq-signature')!, '--public-key', dl.headers.get('x-modelq-public-key')!]);
    expect(ok.status, ok.stderr).toBe(0);
    const bytes = fs.readFileSync(file);
    bytes[100] = bytes[100]! ^ 1;
    fs.writeFileSync(file, bytes);
    const bad = cli(['verify', file, '--signature', v.signature!.value, '--public-key', v.signature!.publicKey]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/NOT verified/);

    // Flip one byte of the stored model, then start a worker that serves it.
    checker.child.kill('SIGKILL');
    await checker.exited;
    const stored = path.join(p.cfg.MODELQ_DATA_DIR, modelArtifactKey(v.sha256));
    const raw = fs.readFileSync(stored);
    raw[raw.length - 20] = raw[raw.length - 20]! ^ 0x40;
    fs.writeFileSync(stored, raw);
    await p.addWorker();
    const r = await postJson(
      `${p.url}/v2/models/signed/infer`,
      { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
      { headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` } },
    );
    expect(r.status).toBeGreaterThanOrEqual(400);
    const body = JSON.stringify(await r.json());
    expect(body).toContain('signed@1');
    expect(body).toMatch(/altered/);
  });

  it("refuses an unsigned or untrusted upload from a tenant whose policy requires a signature, and records a trusted publisher's", async () => {
    const model = tinyMlp(9);
    const unsigned = await upload('acme-model', model, ACME);
    expect(unsigned.status).toBe(403);
    expect(((await unsigned.json()) as { error: { code: string } }).error.code).toBe('forbidden');

    const sha = (await import('node:crypto')).createHash('sha256').update(model).digest('hex');
    const untrusted = await upload('acme-model', model, ACME, { 'x-modelq-signature': stranger.sign(sha).value });
    expect(untrusted.status).toBe(403);

    const signedCli = cli(['sign', writeTmp('acme.onnx', model), '--private-key', publisherPem]);
    expect(signedCli.status, signedCli.stderr).toBe(0);
    const signed = await upload('acme-model', model, ACME, { 'x-modelq-signature': signedCli.stdout.trim() });
    expect(signed.status).toBe(201);
    const rec = (await signed.json()) as VersionRecord;
    expect(rec.publisher?.keyId).toBe(publisher.keyId);
    expect(rec.signature?.publicKey).not.toBe(publisher.publicKey);
  });
});

function writeTmp(name: string, bytes: Uint8Array): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, bytes);
  return f;
}

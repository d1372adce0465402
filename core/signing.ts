// Ed25519 signatures of model digests: the platform signs every version it registers, publishers
// may sign what they upload, workers and `modelq verify` check. The signed message is the ASCII
// lowercase sha256 hex digest of the ONNX file (64 bytes), so a signature is reproducible with any
// Ed25519 tool; signatures and public keys travel as base64 (keys: SPKI DER).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

const SHA256 = /^[0-9a-f]{64}$/;

/** What a version record carries about who signed its digest. */
export const signatureSchema = z.object({
  algorithm: z.literal('ed25519'),
  /** base64 Ed25519 signature of the sha256 hex digest. */
  value: z.string(),
  /** base64 SPKI DER of the key that signed. */
  publicKey: z.string(),
  /** First 16 hex digits of the sha256 of the public key's DER. */
  keyId: z.string(),
});
export type SignatureRecord = z.infer<typeof signatureSchema>;

export const keyIdOf = (publicKeyB64: string) => createHash('sha256').update(Buffer.from(publicKeyB64, 'base64')).digest('hex').slice(0, 16);

const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' }).toString('base64');

/** A public key from base64 SPKI DER or PEM; null when it is not an Ed25519 key. */
export function parsePublicKey(text: string): KeyObject | null {
  try {
    const t = text.trim();
    const k = t.startsWith('-----BEGIN') ? createPublicKey(t) : createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' });
    return k.asymmetricKeyType === 'ed25519' ? k : null;
  } catch {
    return null;
  }
}

/** Whether `signatureB64` is `publicKey`'s signature of the digest. Never throws on malformed input. */
export function verifyDigest(sha256: string, signatureB64: string, publicKey: string | KeyObject): boolean {
  if (!SHA256.test(sha256)) return false;
  const key = typeof publicKey === 'string' ? parsePublicKey(publicKey) : publicKey;
  if (!key) return false;
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, Buffer.from(sha256, 'ascii'), key, sig);
  } catch {
    return false;
  }
}

export class Signer {
  readonly publicKey: string;
  readonly keyId: string;
  constructor(private readonly key: KeyObject) {
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('the signing key is not an Ed25519 key');
    this.publicKey = spki(createPublicKey(key));
    this.keyId = keyIdOf(this.publicKey);
  }

  sign(sha256: string): SignatureRecord {
    if (!SHA256.test(sha256)) throw new Error(`"${sha256.slice(0, 80)}" is not a sha256 hex digest`);
    return { algorithm: 'ed25519', value: sign(null, Buffer.from(sha256, 'ascii'), this.key).toString('base64'), publicKey: this.publicKey, keyId: this.keyId };
  }

  static generate(): Signer {
    return new Signer(generateKeyPairSync('ed25519').privateKey);
  }
}

/** Where a first local run keeps its generated key: the user's local state directory, never the repository or the store. */
export function defaultKeyFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'modelq', 'signing-ed25519.pem');
}

const loaded = new Map<string, Signer>();

/**
 * The platform's signer from MODELQ_SIGNING_KEY_FILE; with none named, the key in the local state
 * directory, generated there on first use (`warn` is told). Two processes generating at once agree:
 * the file appears whole by link(2), and the loser reads the winner's key.
 */
export function platformSigner(file: string, warn: (msg: string) => void = (m) => process.emitWarning(m)): Signer {
  const named = Boolean(file);
  const f = path.resolve(file || defaultKeyFile());
  const hit = loaded.get(f);
  if (hit) return hit;
  let pem: string;
  try {
    pem = fs.readFileSync(f, 'utf8');
  } catch (e) {
    if (named || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`MODELQ_SIGNING_KEY_FILE: cannot read ${f}: ${(e as Error).message}`);
    pem = generateKeyFile(f);
    warn(`no MODELQ_SIGNING_KEY_FILE: generated an Ed25519 model signing key in ${f}; set MODELQ_SIGNING_KEY_FILE to one shared key in production`);
  }
  let s: Signer;
  try {
    s = new Signer(createPrivateKey(pem));
  } catch (e) {
    throw new Error(`MODELQ_SIGNING_KEY_FILE: ${f} is not an Ed25519 private key in PEM: ${(e as Error).message}`);
  }
  loaded.set(f, s);
  return s;
}

function generateKeyFile(f: string): string {
  fs.mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const tmp = `${f}.${process.pid}.${Date.now()}.tmp`;
  fs.writeFileSync(tmp, pem, { mode: 0o600 });
  try {
    fs.linkSync(tmp, f);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return fs.readFileSync(f, 'utf8');
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return pem;
}

/** MODELQ_TRUSTED_KEYS: comma-separated base64 SPKI keys; a bad entry is an error naming its position. */
export function parseTrustedKeys(list: string): { publicKey: string; keyId: string; key: KeyObject }[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s, i) => {
      const key = parsePublicKey(s);
      if (!key) throw new Error(`MODELQ_TRUSTED_KEYS: entry ${i + 1} is not an Ed25519 public key (base64 SPKI DER)`);
      const publicKey = spki(key);
      return { publicKey, keyId: keyIdOf(publicKey), key };
    });
}

/** The trusted publisher key that signed this digest, or null. */
export function trustedSigner(sha256: string, signatureB64: string, trusted: ReturnType<typeof parseTrustedKeys>): SignatureRecord | null {
  for (const t of trusted)
    if (verifyDigest(sha256, signatureB64, t.key)) return { algorithm: 'ed25519', value: signatureB64, publicKey: t.publicKey, keyId: t.keyId };
  return null;
}

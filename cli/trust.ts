// `modelq verify` checks a downloaded model offline against the platform's (or a publisher's)
// signature of its digest; `modelq sign` makes a publisher signature for an upload
// (x-modelq-signature). Both work on the file alone: no server.
import { createHash, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { loadConfig } from '../core/config.ts';
import { parsePublicKey, Signer, verifyDigest } from '../core/signing.ts';
import { EncryptedStore, masterKeysFrom } from '../core/storage/encrypted-store.ts';
import { plainStore } from '../core/storage/index.ts';
import { CliError } from './client.ts';
import { printJson, wantsJson } from './output.ts';

/** A value given on the command line, or read from a file when it starts with @. */
function valueOrFile(v: string, what: string): string {
  if (!v.startsWith('@')) return v.trim();
  try {
    return fs.readFileSync(v.slice(1), 'utf8').trim();
  } catch (e) {
    throw new CliError(`${what}: cannot read ${v.slice(1)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    await pipeline(fs.createReadStream(file), hash);
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return hash.digest('hex');
}

export function registerTrust(program: Command): void {
  program
    .command('verify <file>')
    .description(
      "check FILE against a signature of its sha256 (the download's x-modelq-signature and x-modelq-public-key, or the version record's); exit 1 when it does not verify",
    )
    .requiredOption('--signature <base64>', 'the signature (base64), or @file holding it')
    .requiredOption('--public-key <key>', 'the public key (base64 SPKI DER, or PEM), or @file holding it')
    .action(async (file: string, o: { signature: string; publicKey: string }, cmd: Command) => {
      const publicKey = valueOrFile(o.publicKey, '--public-key');
      if (!parsePublicKey(publicKey)) throw new CliError('--public-key is not an Ed25519 public key (base64 SPKI DER or PEM)');
      const sha256 = await fileSha256(file);
      const ok = verifyDigest(sha256, valueOrFile(o.signature, '--signature'), publicKey);
      if (wantsJson(cmd)) printJson({ file, sha256, verified: ok });
      else process.stdout.write(ok ? `verified: ${file} (sha256 ${sha256})\n` : `NOT verified: ${file} (sha256 ${sha256}) does not match the signature\n`);
      process.exitCode = ok ? 0 : 1;
    });

  program
    .command('sign <file>')
    .description('sign FILE (its sha256) with an Ed25519 private key (PEM), for an upload with x-modelq-signature')
    .requiredOption('--private-key <pem-file>', 'the publisher private key (PKCS#8 PEM)')
    .action(async (file: string, o: { privateKey: string }, cmd: Command) => {
      let signer: Signer;
      try {
        signer = new Signer(createPrivateKey(fs.readFileSync(o.privateKey, 'utf8')));
      } catch (e) {
        throw new CliError(`--private-key: not a readable Ed25519 private key in PEM (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      const sha256 = await fileSha256(file);
      const s = signer.sign(sha256);
      if (wantsJson(cmd)) return printJson({ file, sha256, signature: s.value, publicKey: s.publicKey, keyId: s.keyId });
      process.stdout.write(`${s.value}\n`);
      process.stderr.write(`sha256 ${sha256}; public key (for MODELQ_TRUSTED_KEYS): ${s.publicKey}\n`);
    });

  program
    .command('rotate-key')
    .description(
      "rewrap every stored object's data key with the first master key (the platform's MODELQ_MASTER_KEY or MODELQ_MASTER_KEY_FILE, with the old keys after it); object bodies are not rewritten",
    )
    .option('--prefix <prefix>', 'only objects whose keys start with this', '')
    .action(async (o: { prefix: string }, cmd: Command) => {
      let cfg;
      try {
        cfg = loadConfig(process.env);
      } catch (e) {
        throw new CliError(`the platform configuration in this environment is not valid: ${(e as Error).message}`);
      }
      const keys = masterKeysFrom(cfg);
      if (!keys) throw new CliError('no master key: set MODELQ_MASTER_KEY or MODELQ_MASTER_KEY_FILE (new key first, old keys after it)');
      const r = await new EncryptedStore(plainStore(cfg), keys).rotate(o.prefix);
      if (wantsJson(cmd)) return printJson({ ...r, keyId: keys.current.id });
      process.stdout.write(`rewrapped ${r.rewrapped} data keys with master key ${keys.current.id}; ${r.current} already were\n`);
    });
}

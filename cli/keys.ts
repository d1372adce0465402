// `modelq keys new`: a fresh API key and the MODELQ_API_KEYS entry that grants it, made locally
// (keys are configuration: the platform reads them at start; it has no route that creates them).
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { SCOPES } from '../core/auth.ts';
import { CliError } from './client.ts';
import { printJson, wantsJson } from './output.ts';

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description('API keys: make one for MODELQ_API_KEYS');
  keys
    .command('new')
    .description('print a new random key and its MODELQ_API_KEYS entry (add it there, or to MODELQ_API_KEYS_FILE, and restart)')
    .requiredOption('--tenant <tenant>', 'the tenant the key acts for')
    .option('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, 'read,infer,submit')
    .action((o: { tenant: string; scopes: string }, cmd: Command) => {
      const scopes = o.scopes.split(',').map((s) => s.trim());
      const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
      if (bad.length) throw new CliError(`--scopes: unknown ${bad.join(', ')} (known: ${SCOPES.join(', ')})`);
      if (!/^[a-zA-Z0-9_.-]{1,64}$/.test(o.tenant)) throw new CliError('--tenant must be 1-64 letters, digits, _ . -');
      const key = `mq_${randomBytes(24).toString('hex')}`;
      const entry = { [key]: { tenant: o.tenant, scopes } };
      if (wantsJson(cmd)) return printJson({ key, tenant: o.tenant, scopes, entry });
      process.stdout.write(`${key}\n`);
      process.stderr.write(`add to MODELQ_API_KEYS (a JSON object of key -> tenant and scopes):\n  ${JSON.stringify(entry)}\n`);
    });
}

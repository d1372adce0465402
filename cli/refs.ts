// Model references on the command line: `name`, `name@alias` or `name@3`, resolved against the
// registry (the /v1 version routes take numbers; aliases are read from the model).
import type { ModelRecord, VersionRecord } from '../core/registry.ts';
import { CliError, type Client } from './client.ts';

export function splitRef(ref: string): { name: string; selector?: string } {
  const at = ref.indexOf('@');
  return at < 0 ? { name: ref } : { name: ref.slice(0, at), selector: ref.slice(at + 1) };
}

export const modelPath = (name: string) => `v1/models/${encodeURIComponent(name)}`;

/** The version a reference names (default: the `latest` alias). */
export async function resolveVersion(client: Client, ref: string): Promise<VersionRecord> {
  const { name, selector } = splitRef(ref);
  let version: number | undefined = selector && /^\d+$/.test(selector) ? Number(selector) : undefined;
  if (version === undefined) {
    const m = await client.json<ModelRecord>('GET', modelPath(name));
    version = m.aliases[selector ?? 'latest'];
    if (version === undefined)
      throw new CliError(`model ${name} has no alias "${selector ?? 'latest'}" (aliases: ${Object.keys(m.aliases).join(', ') || 'none'})`);
  }
  return client.json<VersionRecord>('GET', `${modelPath(name)}/versions/${version}`);
}

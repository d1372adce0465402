// `modelq models ...`: list, show, upload an ONNX file, download a version's ONNX, set or remove an
// alias, share a model with other tenants (or stop).
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { ModelRecord, VersionRecord } from '../core/registry.ts';
import { CliError, sendJson, type Client } from './client.ts';
import { fields, printJson, table, wantsJson } from './output.ts';
import { modelPath, resolveVersion, splitRef } from './refs.ts';

type ClientOf = (cmd: Command) => Client;

const signature = (v: VersionRecord) =>
  `${v.inputs.map((i) => `${i.name} ${i.datatype} [${i.shape.join(',')}]`).join(', ')} -> ${v.outputs.map((o) => `${o.name} ${o.datatype} [${o.shape.join(',')}]`).join(', ')}`;

function versionSummary(v: VersionRecord): Record<string, unknown> {
  return {
    model: `${v.name}@${v.version}`,
    bytes: v.bytes,
    sha256: v.sha256,
    created: v.createdAt,
    signature: signature(v),
    ...(v.metrics ? { metrics: v.metrics } : {}),
    ...(v.lineage ? { lineage: v.lineage } : {}),
  };
}

/** Writes `res` to `file` through a .part file renamed at the end: an interrupted download leaves nothing half-written. */
export async function writeDownload(body: NodeJS.ReadableStream, file: string): Promise<number> {
  const target = path.resolve(file);
  const part = `${target}.${process.pid}.part`;
  try {
    await pipeline(body, fs.createWriteStream(part));
    fs.renameSync(part, target);
  } catch (e) {
    fs.rmSync(part, { force: true });
    throw new CliError(`the download to ${file} failed: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return fs.statSync(target).size;
}

export function registerModels(program: Command, client: ClientOf): void {
  const models = program.command('models').description('the model registry: list, show, upload, download, alias, share');

  models
    .command('list')
    .description('every model you can read: versions, aliases, owner')
    .action(async (_o: unknown, cmd: Command) => {
      const { models: list } = await client(cmd).json<{ models: ModelRecord[] }>('GET', 'v1/models');
      if (wantsJson(cmd)) return printJson({ models: list });
      if (!list.length) return void process.stdout.write('no models yet (modelq models upload NAME FILE.onnx)\n');
      process.stdout.write(
        table(
          list.map((m) => ({
            name: m.name,
            versions: m.versions.length,
            latest: m.aliases.latest,
            aliases: Object.entries(m.aliases)
              .filter(([a]) => a !== 'latest')
              .map(([a, v]) => `${a}=${v}`)
              .join(' '),
            owner: m.owner,
            shared: m.shared ? 'yes' : 'no',
          })),
        ),
      );
    });

  models
    .command('show <ref>')
    .description('a model (NAME: its versions and aliases) or one version (NAME@VERSION or NAME@ALIAS)')
    .action(async (ref: string, _o: unknown, cmd: Command) => {
      const c = client(cmd);
      if (!splitRef(ref).selector) {
        const m = await c.json<ModelRecord>('GET', modelPath(ref));
        if (wantsJson(cmd)) return printJson(m);
        process.stdout.write(`${m.name} (owner ${m.owner}, ${m.shared ? 'shared' : 'private'})\n`);
        process.stdout.write(
          table(
            m.versions.map((v) => ({
              version: v.version,
              aliases: Object.keys(m.aliases)
                .filter((a) => m.aliases[a] === v.version)
                .join(' '),
              bytes: v.bytes,
              created: v.createdAt,
              source: v.lineage?.source,
              signature: signature(v),
            })),
          ),
        );
        return;
      }
      const v = await resolveVersion(c, ref);
      if (wantsJson(cmd)) return printJson(v);
      process.stdout.write(fields(versionSummary(v)));
    });

  models
    .command('upload <name> <file>')
    .description('register FILE (ONNX) as the next version of NAME; the platform loads it first')
    .action(async (name: string, file: string, _o: unknown, cmd: Command) => {
      let size: number;
      try {
        size = fs.statSync(file).size;
      } catch (e) {
        throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const v = await client(cmd).json<VersionRecord>('POST', `${modelPath(name)}/versions`, {
        body: fs.createReadStream(file),
        headers: { 'content-type': 'application/octet-stream', 'content-length': size },
      });
      if (wantsJson(cmd)) return printJson(v);
      process.stdout.write(`${v.name}@${v.version} ${signature(v)}\n`);
    });

  models
    .command('download <ref>')
    .description("write a version's ONNX file (default NAME-vVERSION.onnx)")
    .option('-o, --output <file>', 'where to write it')
    .action(async (ref: string, o: { output?: string }, cmd: Command) => {
      const c = client(cmd);
      const v = await resolveVersion(c, ref);
      const file = o.output ?? `${v.name}-v${v.version}.onnx`;
      const bytes = await writeDownload(await c.request('GET', `${modelPath(v.name)}/versions/${v.version}/onnx`), file);
      if (bytes !== v.bytes) throw new CliError(`${file}: got ${bytes} bytes, the version has ${v.bytes}`);
      if (wantsJson(cmd)) return printJson({ model: v.name, version: v.version, file, bytes, sha256: v.sha256 });
      process.stderr.write(`wrote ${v.name}@${v.version} (${bytes} bytes) to ${file}\n`);
    });

  models
    .command('alias <name> <alias> [version]')
    .description('point ALIAS of NAME at VERSION (a number), or remove it with --delete')
    .option('--delete', 'remove the alias')
    .action(async (name: string, alias: string, version: string | undefined, o: { delete?: boolean }, cmd: Command) => {
      const c = client(cmd);
      const p = `${modelPath(name)}/aliases/${encodeURIComponent(alias)}`;
      if (o.delete) {
        (await c.request('DELETE', p)).resume();
        if (wantsJson(cmd)) return printJson({ name, alias, deleted: true });
        return void process.stdout.write(`${name}@${alias} removed\n`);
      }
      if (!version || !/^\d+$/.test(version)) throw new CliError('give the version the alias points at, a number (or --delete)');
      const r = await sendJson<{ name: string; alias: string; version: number }>(c, 'PUT', p, { version: Number(version) });
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`${r.name}@${r.alias} -> ${r.version}\n`);
    });

  models
    .command('share <name>')
    .description("let every tenant read and infer NAME (--off: only its owner's tenant again)")
    .option('--off', 'stop sharing')
    .action(async (name: string, o: { off?: boolean }, cmd: Command) => {
      const r = await sendJson<{ name: string; owner: string; shared: boolean }>(client(cmd), 'PUT', `${modelPath(name)}/sharing`, { shared: !o.off });
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`${r.name} ${r.shared ? 'shared with every tenant' : `private to ${r.owner}`}\n`);
    });
}

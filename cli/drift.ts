// `modelq drift`: a version's drift report (per feature: the score against its reference profile
// and the level), and setting that reference from a dataset.
import type { Command } from 'commander';
import { sendJson, type Client } from './client.ts';
import { printJson, table, wantsJson } from './output.ts';
import { modelPath, resolveVersion } from './refs.ts';

type ClientOf = (cmd: Command) => Client;

interface DriftView {
  name: string;
  version: number;
  rows: number;
  level: string;
  features: { name: string; kind: string; metric: string; score: number | null; level: string }[];
}

export function registerDrift(program: Command, client: ClientOf): void {
  program
    .command('drift <model>')
    .description("a version's input drift against its reference: per feature, PSI or Jensen-Shannon and the level")
    .option('--reference <dataset>', "first set the version's reference profile from a dataset (admin)")
    .action(async (model: string, o: { reference?: string }, cmd: Command) => {
      const c = client(cmd);
      const v = await resolveVersion(c, model);
      const base = `${modelPath(v.name)}/versions/${v.version}`;
      if (o.reference) await sendJson(c, 'PUT', `${base}/reference`, { dataset: o.reference });
      const r = await c.json<DriftView>('GET', `${base}/drift`);
      if (wantsJson(cmd)) return printJson(r);
      process.stdout.write(`${r.name}@${r.version}: ${r.level} over the last ${r.rows} rows\n`);
      process.stdout.write(table(r.features.map((f) => ({ feature: f.name, kind: f.kind, metric: f.metric, score: f.score, level: f.level }))));
    });
}

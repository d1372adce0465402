// The `modelq` command as a client of the whole platform (#29 item 4), run for real (`node
// cli/bin.mjs`) against a producer and a worker: a dataset uploaded and shown, a model trained with
// its progress followed, the registry listed, shown and downloaded, a CSV file predicted into a
// table, and --json output parsed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { tmpDir } from '../fixtures/models.ts';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
let p: TestPlatform;
let dir: string;

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { MODELQ_API_KEY: _k, MODELQ_URL: _u, ...rest } = process.env;
  const child = spawn(process.execPath, ['cli/bin.mjs', ...args], { cwd: ROOT, env: { ...rest, MODELQ_URL: p.url }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

/** 150 rows of 4 measurements and a species in three clear clusters (a fixed generator: the same file each run). */
function irisCsv(): string {
  let s = 7;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const names = ['setosa', 'versicolor', 'virginica'];
  const lines = ['sepal_length,sepal_width,petal_length,petal_width,species'];
  for (let i = 0; i < 150; i++) {
    const c = i % 3;
    const v = [5 + c * 0.9 + rand(), 3.4 - c * 0.3 + rand() / 2, 1.5 + c * 2 + rand(), 0.2 + c * 0.9 + rand() / 3];
    lines.push([...v.map((x) => x.toFixed(2)), names[c]].join(','));
  }
  return lines.join('\n') + '\n';
}

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  dir = tmpDir('modelq-cli-client');
  fs.writeFileSync(path.join(dir, 'iris.csv'), irisCsv());
  fs.writeFileSync(path.join(dir, 'mlp.onnx'), buildMlp({ sizes: [4, 8, 3], seed: 3 }));
});
afterAll(async () => {
  await p?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('modelq as a client', () => {
  let dataset: string;

  it('datasets upload (--json) and show print the columns the platform read', async () => {
    const up = await cli(['datasets', 'upload', path.join(dir, 'iris.csv'), '--json']);
    expect(up.stderr).not.toMatch(/modelq:/);
    expect(up.code).toBe(0);
    const d = JSON.parse(up.stdout);
    expect(d).toMatchObject({ id: expect.stringMatching(/^ds_[0-9a-f]{20}$/), name: 'iris', format: 'csv', rows: 150 });
    expect(d.columns.map((c: { name: string }) => c.name)).toEqual(['sepal_length', 'sepal_width', 'petal_length', 'petal_width', 'species']);
    // Progress goes to stderr (a pipe here: a closing line, no bar).
    expect(up.stderr).toMatch(/uploading .*iris\.csv: [\d.]+ MiB sent/);
    dataset = d.id;

    const show = await cli(['datasets', 'show', dataset]);
    expect(show.code).toBe(0);
    expect(show.stdout.split('\n')[0]).toBe(`${dataset}  iris  csv, 150 rows, 5 columns, ${d.bytes} bytes`);
    expect(show.stdout).toMatch(/^column\s+type/m);
    expect(show.stdout).toMatch(/^species\s+category/m);
  });

  it('train --follow prints a progress line per epoch and the metrics, exit 0', async () => {
    // The network trains in epochs (the tabular default, auto, fits a linear model on data this small).
    const r = await cli([
      'train',
      '-d',
      dataset,
      '-t',
      'species',
      '-r',
      'iris',
      '--set',
      'model={"type":"mlp"}',
      '--set',
      'epochs=12',
      '--set',
      'patience=50',
      '--follow',
    ]);
    expect(r.stderr).not.toMatch(/modelq:/);
    expect(r.code).toBe(0);
    const epochs = r.stderr.split('\n').filter((l) => /^epoch \d+\/12 loss [\d.]+ valLoss [\d.]+ accuracy [\d.]+$/.test(l));
    // Polled every 500 ms: at least the last epoch is seen, and the lines count up.
    expect(epochs.length).toBeGreaterThanOrEqual(1);
    const seen = epochs.map((l) => Number(/^epoch (\d+)/.exec(l)![1]));
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(12);
    expect(r.stdout).toMatch(/^train_[0-9a-f]{20}\n/);
    expect(r.stdout).toMatch(/completed: iris@1/);
    expect(r.stdout).toMatch(/^metrics\.accuracy: [\d.]+$/m);
  }, 180_000);

  it('models upload, list (--json), show and download', async () => {
    const up = await cli(['models', 'upload', 'mlp', path.join(dir, 'mlp.onnx')]);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe('mlp@1 input FP32 [-1,4] -> output FP32 [-1,3]\n');

    const list = await cli(['--json', 'models', 'list']);
    expect(list.code).toBe(0);
    const names = JSON.parse(list.stdout).models.map((m: { name: string }) => m.name);
    expect(names).toEqual(expect.arrayContaining(['iris', 'mlp']));
    const human = await cli(['models', 'list']);
    expect(human.stdout).toMatch(/^name\s+versions\s+latest/);
    expect(human.stdout).toMatch(/^iris\s+1\s+1\s/m);

    const show = await cli(['models', 'show', 'iris@latest', '--json']);
    const v = JSON.parse(show.stdout);
    expect(v).toMatchObject({ name: 'iris', version: 1 });
    const alias = await cli(['models', 'alias', 'iris', 'prod', '1']);
    expect(alias.stdout).toBe('iris@prod -> 1\n');
    const showModel = await cli(['models', 'show', 'iris']);
    expect(showModel.stdout).toMatch(/^1\s+latest prod\s+\d+/m);

    const file = path.join(dir, 'iris.onnx');
    const dl = await cli(['models', 'download', 'iris@prod', '-o', file]);
    expect(dl.code).toBe(0);
    expect(dl.stderr).toBe(`wrote iris@1 (${v.bytes} bytes) to ${file}\n`);
    const served = Buffer.from(await (await fetch(`${p.url}/v1/models/iris/versions/1/onnx`)).arrayBuffer());
    expect(fs.readFileSync(file).equals(served)).toBe(true);
  });

  it('predict reads a CSV file into a table, one line per row; --row and --json for one row', async () => {
    const head = irisCsv().split('\n').slice(0, 7).join('\n') + '\n';
    const file = path.join(dir, 'few.csv');
    fs.writeFileSync(file, head);
    const r = await cli(['predict', 'iris', file]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(7);
    expect(lines[0]).toMatch(/^row\s+label\s+probabilities\.setosa\s+probabilities\.versicolor\s+probabilities\.virginica$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['0', '1', '2', '3', '4', '5']);
    for (const l of lines.slice(1)) expect(l.split(/\s+/)[1]).toMatch(/^(setosa|versicolor|virginica)$/);

    const one = await cli(['predict', 'iris@1', '--row', '{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}', '--json']);
    expect(one.code).toBe(0);
    const j = JSON.parse(one.stdout);
    expect(j).toMatchObject({ model: 'iris', version: 1 });
    expect(j.predictions).toHaveLength(1);
    expect(j.predictions[0].label).toMatch(/^(setosa|versicolor|virginica)$/);

    // A model with one 2-D input takes each CSV row's values in order.
    const mlp = path.join(dir, 'mlp.csv');
    fs.writeFileSync(mlp, 'a,b,c,d\n1,2,3,4\n0,0,0,0\n');
    const m = await cli(['predict', 'mlp', mlp, '--json']);
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout).predictions.map((x: { output: number[] }) => x.output.length)).toEqual([3, 3]);
  });

  it('explain prints attributions per column; drift sets a reference from the dataset and prints a line per feature', async () => {
    const row = '{"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2}';
    const e = await cli(['explain', 'iris', '--row', row, '--param', 'explainSamples=2', '--json']);
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
    const x = JSON.parse(e.stdout);
    expect(x.predictions).toHaveLength(1);
    expect(Object.keys(x.explanations[0].attributions).sort()).toEqual(['petal_length', 'petal_width', 'sepal_length', 'sepal_width']);
    const t = await cli(['explain', 'iris', '--row', row, '--param', 'explainSamples=2']);
    expect(t.stdout.split('\n')[0]).toMatch(/\battributions\.sepal_length\b/);

    const d = await cli(['drift', 'iris@1', '--reference', dataset]);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    expect(d.stdout.split('\n')[0]).toMatch(/^iris@1: \w+ over the last \d+ rows$/);
    expect(d.stdout).toMatch(/^feature\s+kind\s+metric\s+score\s+level$/m);
    expect(d.stdout).toMatch(/^petal_length\s+numeric\s+psi\s/m);
  });

  it('server errors exit 2 with the message; keys new makes an entry for MODELQ_API_KEYS', async () => {
    const r = await cli(['models', 'show', 'nosuch']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^modelq: model "nosuch" not found/);
    const k = await cli(['keys', 'new', '--tenant', 'team-a', '--scopes', 'read,infer', '--json']);
    const key = JSON.parse(k.stdout);
    expect(key.key).toMatch(/^mq_[0-9a-f]{48}$/);
    expect(key.entry).toEqual({ [key.key]: { tenant: 'team-a', scopes: ['read', 'infer'] } });
  });

  it('batch --help names Parquet', async () => {
    const r = await cli(['batch', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Parquet/);
  });
});

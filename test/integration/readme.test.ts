// The README and docs/ are tested: their shell examples run, in order (the README's, then each
// docs/*.md page's in the order of the README's Documentation list), against a real platform
// (producer, a worker with every CPU queue, real Redis and onnxruntime), so an example that stops
// working fails CI.
//
// Convention (test/helpers/readme-examples.ts; also in a comment in README.md above "Try it"):
// every ```sh block of README.md and docs/*.md has, on the line before its fence, either
//   <!-- readme-test -->                  run here, in that order, in one bash session
//   <!-- readme-test: skip <reason> -->   not run (S3, GPU, Docker, other hosts, placeholder ids)
// and a shell block with neither fails this test. The run happens in an empty folder inside the
// clone (under test-results/, so `npm run ...` finds the package), with `localhost:8080` (in the
// README's `export MODELQ_URL=...`, which every example uses) replaced by the platform's address
// and MODELQ_URL set as well; curl fails on an HTTP error status. After the run, what the examples
// made is checked through the API: a run that "succeeds" while scoring nothing still fails.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docPages, examplesScript, shellExamples, type ShellExample } from '../helpers/readme-examples.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const DOCS = docPages(
  README,
  fs
    .readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
);
/** Every shell example: the README's, then each linked docs/ page's. */
const examples = (): ShellExample[] => [...shellExamples(README), ...DOCS.flatMap((f) => shellExamples(fs.readFileSync(path.join(ROOT, f), 'utf8'), f))];

let p: TestPlatform;
let dir: string;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  fs.mkdirSync(path.join(ROOT, 'test-results'), { recursive: true });
  dir = fs.mkdtempSync(path.join(ROOT, 'test-results', 'readme-'));
}, 60_000);
afterAll(async () => {
  await p?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function run(script: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    const timer = setTimeout(() => {
      out += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

const get = async (route: string) => {
  const r = await fetch(`${p.url}${route}`);
  expect(r.status, `${route}: ${await r.clone().text()}`).toBe(200);
  return r;
};

describe('README.md and docs/', () => {
  it('marks every shell block as run or skipped, with a reason', () => {
    const all = examples();
    expect(all.filter((e) => e.run && e.file === 'README.md').length).toBeGreaterThanOrEqual(1);
    expect(new Set(all.filter((e) => e.run).map((e) => e.file)).size).toBeGreaterThanOrEqual(4);
    for (const e of all.filter((x) => !x.run)) expect(e.reason, `block at ${e.file} line ${e.line}`).toBeTruthy();
    expect(() => shellExamples('text\n```sh\ncurl x\n```\n')).toThrow(/README.md line 2: a shell block needs/);
    expect(() => shellExamples('text\n```sh\ncurl x\n```\n', 'docs/x.md')).toThrow(/docs\/x.md line 2: a shell block needs/);
  });

  it('links every docs/ page, in the order their examples run', () => {
    expect(DOCS.length).toBeGreaterThanOrEqual(8);
    expect(DOCS.indexOf('docs/batches.md')).toBeLessThan(DOCS.indexOf('docs/cli.md')); // the CLI scores the batch examples' files
    expect(() => docPages('- [A](docs/a.md): a\nsee [b](docs/b.md)', ['docs/a.md', 'docs/b.md'])).toThrow(/links no docs\/b.md/);
    expect(() => docPages('- [A](docs/a.md): a\n- [C](docs/c.md): c', ['docs/a.md'])).toThrow(/links docs\/c.md, which does not exist/);
    expect(docPages('see [a](docs/a.md)\n- [B](docs/b.md): b\n- [A](docs/a.md): a', ['docs/a.md', 'docs/b.md'])).toEqual(['docs/b.md', 'docs/a.md']);
  });

  it('runs its examples, in order, from nothing', async () => {
    expect(fs.existsSync('/usr/bin/curl') || fs.existsSync('/bin/curl')).toBe(true);
    const hostPort = new URL(p.url).host;
    const { code, out } = await run(examplesScript(examples(), hostPort), { MODELQ_URL: p.url }, 540_000);
    fs.writeFileSync(path.join(ROOT, 'test-results', 'readme-run.log'), out); // the whole transcript, for a failing CI run
    expect(code, out.slice(-6000)).toBe(0);

    // Try it: the example model, its alias, both inferences.
    const digits = (await (await get('/v1/models/digits')).json()) as { versions: unknown[]; aliases: Record<string, number> };
    expect(digits.versions).toHaveLength(1);
    expect(digits.aliases).toMatchObject({ prod: 1 });
    expect(out).toMatch(/"model_name":"digits","model_version":"1","outputs":\[\{"name":"output","datatype":"FP32","shape":\[2,3\]/);

    // Score a large file and the CLI: the JSONL file (two rows scored, one error) and the CSV file
    // (both scored), each submitted once with curl and once with the CLI (its first submit is not waited for).
    type Batch = { id: string; status: string; requestCounts: Record<string, number>; metadata?: Record<string, string> };
    const batches = await until(async () => {
      const data = ((await (await get('/v1/batches')).json()) as { data: Batch[] }).data;
      return data.every((b) => b.status === 'completed') ? data : null;
    }, 'every batch to complete');
    // The OpenAI batch example of docs/protocols.md runs as one native batch, listed with its origin.
    expect(batches.filter((b) => b.metadata?.openai_batch)).toHaveLength(1);
    const counts = batches
      .filter((b) => !b.metadata?.openai_batch)
      .map((b) => `${b.requestCounts.total}/${b.requestCounts.completed}/${b.requestCounts.failed}`)
      .sort();
    expect(counts).toEqual(['2/2/0', '2/2/0', '3/2/1', '3/2/1']);
    expect(out).toMatch(/^row,id,output_0,output_1,output_2$/m); // the CSV output's header
    expect(fs.statSync(path.join(dir, 'out.parquet')).size).toBeGreaterThan(0);
    expect(fs.readFileSync(path.join(dir, 'out.jsonl'), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(fs.readFileSync(path.join(dir, 'out.csv'), 'utf8').trim().split('\n')).toHaveLength(3);

    // OpenAI-compatible batch with curl alone: the output file has both requests, answered, in order.
    const openaiOut = fs
      .readFileSync(path.join(dir, 'openai-out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(openaiOut.map((l) => [l.custom_id, l.response?.status_code])).toEqual([
      ['r1', 200],
      ['r2', 200],
    ]);
    expect(openaiOut[1].response.body.outputs[0].shape).toEqual([2, 3]);

    // The text classifier answers class names for strings (the two sentences use each class's words).
    expect(out).toMatch(/"model_name":"topics".*"name":"label","datatype":"BYTES","shape":\[2\],"data":\["sport","food"\]/);
    // Train and compress: the trained version, both compressed ones and the text classifier exist.
    for (const name of ['iris', 'iris-int8', 'iris-small', 'topics'])
      expect(((await (await get(`/v1/models/${name}`)).json()) as { versions: unknown[] }).versions).toHaveLength(1);
  }, 600_000);
});

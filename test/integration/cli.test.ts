// The `modelq` command run for real (`node cli/bin.mjs`, as a child process) against a producer
// and one worker process: submit --wait, downloads in order, the error file, server errors and
// exit codes, a cancelled wait, the API key header, an unreachable URL.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchView } from '../../core/batches.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { createProgress } from '../../cli/progress.ts';
import { tmpDir } from '../fixtures/models.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const F = 8;
let p: TestPlatform;
let dir: string;

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'scorer', buildMlp({ sizes: [F, 16, 3], seed: 5 }))).status).toBe(201);
  dir = tmpDir('modelq-cli');
});
afterAll(async () => {
  await p?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  const { MODELQ_API_KEY: _k, MODELQ_URL: _u, ...rest } = process.env;
  return spawn(process.execPath, ['cli/bin.mjs', ...args], {
    cwd: ROOT,
    env: { ...rest, MODELQ_URL: p.url, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

function finished(child: ChildProcess): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b) => {
    stdout += b;
  });
  child.stderr!.on('data', (b) => {
    stderr += b;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

function cli(args: string[], o: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const child = spawnCli(args, o.env);
  const done = finished(child);
  child.stdin!.end(o.stdin ?? '');
  return done;
}

const row = (i: number) => Array.from({ length: F }, (_, j) => ((i * 3 + j) % 11) / 11);
const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const ID = /^batch_[0-9a-f]{20}$/;

describe('modelq batch', () => {
  const n = 3000;
  let id: string;

  it('submits a JSONL file with --wait, prints the counts, exits 0, and plain progress lines off a terminal', async () => {
    const file = path.join(dir, 'rows.jsonl');
    fs.writeFileSync(file, Array.from({ length: n }, (_, i) => JSON.stringify({ id: `r${i}`, input: row(i) })).join('\n') + '\n');
    const r = await cli(['batch', 'submit', file, '--model', 'scorer', '--chunk-rows', '500', '--metadata', '{"team":"cli"}', '--wait']);
    expect(r.stderr).not.toMatch(/modelq:/);
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out[0]).toMatch(ID);
    id = out[0]!;
    expect(r.stdout).toContain(`requestCounts: { total: ${n}, completed: ${n}, failed: 0 }`);
    expect(r.stdout).toMatch(/^status: completed\b/m);
    // stderr is a pipe here: no bar, no escape codes, only progress lines of this batch.
    expect(r.stderr).not.toContain('\x1b');
    const progress = r.stderr.split('\n').filter(Boolean);
    expect(progress.length).toBeGreaterThanOrEqual(1);
    // (the last poll's line says completed when it came more than the line interval after the previous one: a slow machine)
    for (const l of progress) expect(l).toMatch(new RegExp(`^${id} (queued|running|finalizing|completed) \\d+% [\\d,]+/3,000 rows, `));
    const v = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
    expect(v).toMatchObject({ status: 'completed', metadata: { team: 'cli' }, chunks: { total: 6 } });
  });

  it('status prints the batch as JSON', async () => {
    const r = await cli(['batch', 'status', id]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      id,
      status: 'completed',
      model: { name: 'scorer', version: 1 },
      requestCounts: { total: n, completed: n, failed: 0 },
    });
  });

  it('download -o writes one line per row, in input order, the same bytes the server serves', async () => {
    const file = path.join(dir, 'out.jsonl');
    const r = await cli(['batch', 'download', id, '-o', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`wrote ${n} rows`);
    const text = fs.readFileSync(file, 'utf8');
    const out = jsonLines(text);
    expect(out).toHaveLength(n);
    out.forEach((o, i) => {
      if (o.row !== i || o.id !== `r${i}` || o.outputs.output.length !== 3) throw new Error(`line ${i} is ${JSON.stringify(o)}`);
    });
    expect(text).toBe(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text());
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('reads CSV from stdin, and --errors downloads the bad row; --format csv the output', async () => {
    const header = ['id', ...Array.from({ length: F }, (_, j) => `f${j}`)].join(',');
    const lines = [header, ...Array.from({ length: 20 }, (_, i) => (i === 7 ? 'c7,1,2' : [`c${i}`, ...row(i)].join(',')))];
    const r = await cli(['batch', 'submit', '-', '--format', 'csv', '-m', 'scorer', '--chunk-rows', '5', '--wait'], { stdin: lines.join('\n') + '\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('requestCounts: { total: 20, completed: 19, failed: 1 }');
    const csvId = r.stdout.split('\n')[0]!;
    expect(r.stderr).toContain(`modelq batch download ${csvId} --errors`);

    const errs = await cli(['batch', 'download', csvId, '--errors']);
    expect(errs.code).toBe(0);
    const e = jsonLines(errs.stdout);
    expect(e).toHaveLength(1);
    expect(e[0]).toMatchObject({ row: 7, id: 'c7', error: { code: 'bad_row' } });

    const file = path.join(dir, 'out.csv');
    const csv = await cli(['batch', 'download', csvId, '--format', 'csv', '-o', file]);
    expect(csv.code).toBe(0);
    const rows = fs.readFileSync(file, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('row,id,output_0,output_1,output_2');
    expect(rows.slice(1).map((l) => l.split(',')[1])).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`).filter((c) => c !== 'c7'));
  });

  it('without --format the server recognises the bytes: CSV from stdin is scored as CSV, a JSONL file named .csv exits 2 naming both, all-bad rows exit 1 saying why', async () => {
    const header = ['id', ...Array.from({ length: F }, (_, j) => `f${j}`)].join(',');
    const lines = [header, ...Array.from({ length: 6 }, (_, i) => [`c${i}`, ...row(i)].join(','))];
    const r = await cli(['batch', 'submit', '-', '-m', 'scorer', '--wait'], { stdin: lines.join('\n') + '\n' });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('requestCounts: { total: 6, completed: 6, failed: 0 }');

    const misnamed = path.join(dir, 'really-jsonl.csv');
    fs.writeFileSync(misnamed, JSON.stringify({ input: row(0) }) + '\n');
    const m = await cli(['batch', 'submit', misnamed, '-m', 'scorer']);
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/declared CSV \(format=csv\) but its bytes are JSONL/);

    const bad = await cli(['batch', 'submit', '-', '-m', 'scorer', '--wait'], { stdin: '{"input":[1]}\n{"input":[2]}\n' });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('status: failed');
    expect(bad.stderr).toMatch(/failed: every row failed \(2 of 2\); the first errors: row 0: /);
  });

  it("a bad model name exits 2 with the server's message, and uploads nothing", async () => {
    const direct = await fetch(`${p.url}/v1/batches?model=nosuch`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/x-ndjson' } });
    expect(direct.status).toBe(404);
    const message = (await direct.json()).error.message as string;
    expect(message).toMatch(/nosuch/);
    const before = (await (await fetch(`${p.url}/v1/batches?limit=1`)).json()).total;
    const r = await cli(['batch', 'submit', path.join(dir, 'rows.jsonl'), '--model', 'nosuch', '--wait']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`modelq: ${message}\n`);
    expect(r.stdout).toBe('');
    expect((await (await fetch(`${p.url}/v1/batches?limit=1`)).json()).total).toBe(before);
  });

  it('server errors on the other commands exit 2 with the message', async () => {
    const missing = await cli(['batch', 'status', 'batch_00000000000000000000']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('modelq: batch "batch_00000000000000000000" not found\n');
    const late = await cli(['batch', 'cancel', id]);
    expect(late.code).toBe(2);
    expect(late.stderr).toMatch(/^modelq: .*is completed; only a queued or running batch can be cancelled\n$/);
  });

  it('--wait on a batch that gets cancelled exits 1 with the final status', async () => {
    // The worker is stopped so the batch stays queued until the cancel has landed: no race with scoring.
    const worker = p.workers[0]!.child;
    worker.kill('SIGSTOP');
    try {
      const submitting = spawnCli(['batch', 'submit', path.join(dir, 'rows.jsonl'), '--model', 'scorer', '--chunk-rows', '100', '--wait']);
      const result = finished(submitting);
      submitting.stdin!.end();
      const batchId = await new Promise<string>((resolve, reject) => {
        let text = '';
        submitting.stdout!.on('data', (b) => {
          text += b;
          if (text.includes('\n')) resolve(text.split('\n')[0]!);
        });
        submitting.once('close', (code) => reject(new Error(`submit exited ${code} before printing an id`)));
      });
      expect(batchId).toMatch(ID);
      const c = await cli(['batch', 'cancel', batchId]);
      expect(c.code).toBe(0);
      expect(c.stdout).toBe(`${batchId} cancelling\n`);
      worker.kill('SIGCONT');
      const r = await result;
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/^status: cancelled\b/m);
      expect(r.stdout).toMatch(/requestCounts: \{ total: 3000, completed: \d+, failed: 0 \}/);
    } finally {
      worker.kill('SIGCONT');
    }
  });

  it('sends --key as a bearer token and reports a JSON error body', async () => {
    const seen: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unauthorized', message: 'bad API key' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await cli(['--url', url, 'batch', 'status', 'batch_00000000000000000000', '--key', 'k1']);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('modelq: bad API key\n');
      const fromEnv = await cli(['batch', 'cancel', 'batch_00000000000000000000'], { env: { MODELQ_URL: url, MODELQ_API_KEY: 'k2' } });
      expect(fromEnv.code).toBe(2);
      expect(seen).toEqual(['Bearer k1', 'Bearer k2']);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('--wait rides over a 429 from the rate limiter', async () => {
    const view = (status: string, completed: number) => ({
      id: 'batch_11111111111111111111',
      status,
      model: { name: 'm', version: 1 },
      format: 'jsonl',
      requestCounts: { total: 4, completed, failed: 0 },
      progress: completed / 4,
      chunks: { total: 1, done: completed ? 1 : 0 },
      createdAt: new Date().toISOString(),
      expiresAt: new Date().toISOString(),
    });
    let polls = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method === 'POST') return void res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify(view('queued', 0)));
        polls += 1;
        if (polls === 1) {
          return void res
            .writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' })
            .end(JSON.stringify({ error: { code: 'rate_limited', message: 'rate limit of 1/s exceeded; retry later' } }));
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(view('completed', 4)));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await cli(['batch', 'submit', '-', '-m', 'm', '--wait', '--url', url], { stdin: '{"input":[1]}\n' });
      expect(r.stderr).not.toMatch(/modelq:/);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('requestCounts: { total: 4, completed: 4, failed: 0 }');
      expect(polls).toBe(2);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('says which URL could not be reached', async () => {
    const server = http.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise((r) => server.close(r)); // a port that was just free: nothing listens there now
    const r = await cli(['batch', 'status', 'batch_00000000000000000000', '--url', url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`modelq: could not reach ${url}`);
    expect(r.stderr).toContain('ECONNREFUSED');
  });

  it('--json: submit --wait prints the final batch as JSON; a Parquet download counts rows', async () => {
    const r = await cli(['batch', 'submit', path.join(dir, 'rows.jsonl'), '-m', 'scorer', '--chunk-rows', '1000', '--wait', '--json']);
    expect(r.code).toBe(0);
    const v = JSON.parse(r.stdout);
    expect(v).toMatchObject({ id: expect.stringMatching(ID), status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    const file = path.join(dir, 'out.parquet');
    const pq = await cli(['batch', 'download', v.id, '--format', 'parquet', '-o', file]);
    expect(pq.code).toBe(0);
    expect(pq.stderr).toMatch(new RegExp(`^wrote ${n} rows \\(\\d+ bytes\\) to `));
    const j = await cli(['batch', 'download', v.id, '--format', 'csv', '-o', path.join(dir, 'o.csv'), '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ id: v.id, format: 'csv', rows: n });
  });

  it('a download to stdout leaves the shared stdout open for the next command of a shell', async () => {
    const bin = path.join(ROOT, 'cli/bin.mjs');
    const { MODELQ_API_KEY: _k, MODELQ_URL: _u, ...rest } = process.env;
    const child = spawn('bash', ['-c', `set -e; node ${bin} batch download ${id} --errors; node ${bin} batch status ${id}`], {
      cwd: ROOT,
      env: { ...rest, MODELQ_URL: p.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const r = await finished(child);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ id, status: 'completed' });
  });

  it('submits a batch by reference: the input and output URIs as a JSON body, nothing uploaded', async () => {
    let seen: { url?: string; type?: string; body: string } = { body: '' };
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen = { url: req.url, type: req.headers['content-type'], body };
        res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'batch_0123456789abcdef0123', status: 'queued' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const r = await cli(['batch', 'submit', '-m', 'scorer', '--input-uri', 's3://bucket/in.csv', '--output-uri', 's3://bucket/out/', '--url', url]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('batch_0123456789abcdef0123\n');
      expect(seen.url).toBe('/v1/batches?model=scorer&format=csv');
      expect(seen.type).toBe('application/json');
      expect(JSON.parse(seen.body)).toEqual({ input: { uri: 's3://bucket/in.csv', format: 'csv' }, output: { uri: 's3://bucket/out/' } });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('usage errors exit 2 without contacting the server', async () => {
    const r = await cli(['batch', 'submit', path.join(dir, 'rows.jsonl')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/required option '-m, --model <ref>'/);
    expect((await cli(['batch', 'download', id, '--errors', '--format', 'csv'])).code).toBe(2);
  });
});

describe('progress off a terminal', () => {
  it('prints at most one plain line a second, with rows done, rows/s and ETA', () => {
    let now = 0;
    const written: string[] = [];
    const stream = {
      isTTY: false,
      write: (s: string) => {
        written.push(s);
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    const display = createProgress({ stream, now: () => now });
    const view = (done: number, status = 'running'): BatchView => ({
      id: 'batch_x',
      status: status as BatchView['status'],
      model: { name: 'm', version: 1 },
      format: 'jsonl',
      requestCounts: { total: 10_000, completed: done, failed: 0 },
      progress: done / 10_000,
      chunks: { total: 10, done: done / 1000 },
      createdAt: '',
      expiresAt: '',
    });
    for (let t = 0; t <= 3000; t += 250) {
      now = t;
      display.update(view(t * 2, t === 0 ? 'queued' : 'running'));
    }
    display.stop();
    expect(written).toEqual([
      'batch_x queued 0% 0/10,000 rows, - rows/s, ETA -\n',
      'batch_x running 20% 2,000/10,000 rows, 2,000 rows/s, ETA 4s\n',
      'batch_x running 40% 4,000/10,000 rows, 2,000 rows/s, ETA 3s\n',
      'batch_x running 60% 6,000/10,000 rows, 2,000 rows/s, ETA 2s\n',
    ]);
  });
});

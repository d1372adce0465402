// Explanations bounded in bytes (#25 cases 4 and 5), on a real platform: a text request of 3 MB of
// 3,000 distinct long words is refused naming MODELQ_EXPLAIN_MAX_BYTES, online and as a batch line
// (the worker checks again); a one-feature model's 50,000 rows x 1,024 samples are exact and cheap;
// a 500-feature model against 1,000 background rows (2 GB of perturbed rows) completes with the
// worker's memory bounded. The worker stays up and keeps answering throughout.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearModel } from '../fixtures/explain-models.ts';
import { rows } from '../fixtures/models.ts';
import { sentimentModel } from '../fixtures/sentiment-model.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = { 'admin-key-0123456789': { tenant: 'acme', scopes: ['admin'] } };
const auth = (headers: Record<string, string> = {}) => ({ authorization: 'Bearer admin-key-0123456789', ...headers });
const json = auth({ 'content-type': 'application/json' });
const WIDE = 500;
const W = Array.from({ length: WIDE }, (_, i) => ((i % 9) - 4) / 50);

let p: TestPlatform;
beforeAll(async () => {
  // 4 GiB: the wide model's 2 GB of perturbed rows are allowed, the 9 GB text is not.
  p = await startPlatform({ workers: 1, env: { MODELQ_API_KEYS: JSON.stringify(KEYS), MODELQ_EXPLAIN_MAX_BYTES: String(4 * 2 ** 30) } });
  for (const [name, bytes] of [
    ['text', sentimentModel('n')],
    ['one', linearModel([2])],
    ['wide', linearModel(W)],
  ] as const) {
    const up = await fetch(`${p.url}/v1/models/${name}/versions`, {
      method: 'POST',
      body: Buffer.from(bytes),
      headers: auth({ 'content-type': 'application/octet-stream' }),
    });
    expect(up.status).toBe(201);
  }
}, 60_000);
afterAll(async () => {
  await p?.stop();
});

/** The worker process's resident memory (its engine threads included), in bytes. */
const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p.workers[0]!.child.pid}/status`, 'utf8'))![1]) * 1024;

/** `count` distinct words of `length` letters each. */
function longWords(count: number, length: number): string {
  const words: string[] = [];
  for (let i = 0; i < count; i++) {
    let w = '';
    for (let k = i; w.length < 6; k = Math.floor(k / 26)) w += String.fromCharCode(97 + (k % 26));
    words.push(w + 'x'.repeat(length - w.length));
  }
  return words.join(' ');
}

const explainText = (texts: string[]) =>
  fetch(`${p.url}/v2/models/text/infer`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({ parameters: { explain: true }, inputs: [{ name: 'text', datatype: 'BYTES', shape: [texts.length], data: texts }] }),
  });

const explainRows = (name: string, x: Float32Array, features: number, samples: number) =>
  fetch(`${p.url}/v2/models/${name}/infer`, {
    method: 'POST',
    headers: json,
    body: JSON.stringify({
      parameters: { explain: true, explainSamples: samples },
      inputs: [{ name: 'features', datatype: 'FP32', shape: [x.length / features, features], data: Array.from(x) }],
    }),
  });

const setBackground = async (name: string, bg: Float32Array, features: number) => {
  const body = { rows: Array.from({ length: bg.length / features }, (_, i) => Array.from(bg.subarray(i * features, (i + 1) * features))) };
  const put = await fetch(`${p.url}/v1/models/${name}/versions/1/background`, { method: 'PUT', headers: json, body: JSON.stringify(body) });
  expect(put.status).toBe(200);
};

describe('explanations bounded in bytes', () => {
  const text = longWords(3000, 1000);

  it('refuses 3 MB of 3,000 distinct long words online, naming the limit; the worker keeps answering', async () => {
    expect(Buffer.byteLength(text)).toBeGreaterThan(3_000_000);
    const res = await explainText([text]);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatch(/bytes of text.*the limit is 4294967296 bytes \(MODELQ_EXPLAIN_MAX_BYTES\)/);
    const ok = await explainText(['a good movie']);
    expect(ok.status).toBe(200);
  });

  it('fails the same line of an explained batch with the limit named, the worker up and its memory bounded', async () => {
    const before = rss();
    const body = [JSON.stringify({ text: 'a good movie' }), JSON.stringify({ text })].join('\n');
    const res = await fetch(`${p.url}/v1/batches?model=text&explain=true`, { method: 'POST', body, headers: auth({ 'content-type': 'application/x-ndjson' }) });
    const accepted = await res.json();
    expect(res.status, JSON.stringify(accepted)).toBe(202);
    const done = await until(
      async () => {
        const v = await (await fetch(`${p.url}/v1/batches/${accepted.id}`, { headers: auth() })).json();
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      'batch to end',
      120_000,
    );
    const errors = await (await fetch(`${p.url}/v1/batches/${accepted.id}/errors`, { headers: auth() })).text();
    expect(`${JSON.stringify(done)} ${errors}`).toMatch(/MODELQ_EXPLAIN_MAX_BYTES/);
    expect(p.workers[0]!.child.exitCode).toBeNull();
    expect(rss() - before).toBeLessThan(1024 ** 3);
    expect((await explainText(['a good movie'])).status).toBe(200);
  });

  it('explains a one-feature model exactly: 50,000 rows x 1,024 samples cost 50,000 evaluations, not a dead worker', async () => {
    const bg = rows(1000, 1, 4);
    await setBackground('one', bg, 1);
    const x = rows(50_000, 1, 3);
    const res = await explainRows('one', x, 1, 1024);
    const body = await res.json();
    expect(res.status, JSON.stringify(body).slice(0, 300)).toBe(200);
    const attr = body.outputs.find((o: { name: string }) => o.name === 'attributions');
    expect(attr.shape).toEqual([50_000, 1]);
    const mean = bg.reduce((a, b) => a + b, 0) / bg.length;
    for (const i of [0, 17, 49_999]) expect(attr.data[i]).toBeCloseTo(2 * (x[i]! - mean), 4);
    expect(p.workers[0]!.child.exitCode).toBeNull();
  }, 120_000);

  it('explains 500 features against 1,000 background rows (2 GB of perturbed rows) in bounded runs', async () => {
    const bg = rows(1000, WIDE, 6);
    await setBackground('wide', bg, WIDE);
    const before = rss();
    const x = rows(1, WIDE, 7);
    const res = await explainRows('wide', x, WIDE, 2);
    const body = await res.json();
    expect(res.status, JSON.stringify(body).slice(0, 300)).toBe(200);
    const attr = body.outputs.find((o: { name: string }) => o.name === 'attributions').data as number[];
    const value = body.outputs.find((o: { name: string }) => o.name === 'prediction').data[0] as number;
    expect(Math.abs(attr.reduce((a, b) => a + b, 0) - (value - body.parameters.explain_base[0]))).toBeLessThan(1e-3);
    for (const f of [0, 123, 499]) {
      let mean = 0;
      for (let b = 0; b < 1000; b++) mean += bg[b * WIDE + f]!;
      expect(attr[f]!).toBeCloseTo(W[f]! * (x[f]! - mean / 1000), 3);
    }
    // before: one walk per run, 1 GB of points built at once (and copied to the engine thread)
    expect(rss() - before).toBeLessThan(512 * 1024 ** 2);
  }, 180_000);
});

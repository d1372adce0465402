// The soak's hostile client (issue 25): throughout the soak it sends what once wedged, crashed or
// leaked: the hostile Parquet files of cases 1, 2 and 6, JSON bodies past the body limit, uploads
// and downloads abandoned midway (cases 7 and 13), and mutated request bodies (the fuzzers'). It
// records what came back; the soak then checks the hostile batches ended failed with the reason
// and that nothing was left open or on disk.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import fc from 'fast-check';
import { mutatedForm, mutatedJson, type FuzzedBody } from '../helpers/fuzz-bodies.ts';
import { hostileFiles } from '../helpers/parquet-hostile.ts';
import type { TestPlatform } from '../helpers/platform.ts';

export const HOSTILE_KINDS = [
  'parquet-spin',
  'parquet-huge-page',
  'parquet-huge-rows',
  'oversized-json',
  'aborted-upload',
  'aborted-download',
  'bad-json',
  'bad-form',
] as const;
type Kind = (typeof HOSTILE_KINDS)[number];

export interface HostileTally {
  sent: Record<Kind, number>;
  /** Accepted hostile batches and the reason each must fail with. */
  batches: { id: string; why: RegExp }[];
  /** Answers that show a request was not handled: a 5xx other than 503, no answer, a wrong status. */
  bad: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Handled: any 4xx, or 503 (a Redis restart or the memory mark refuses new work). */
const handled = (s: number) => (s >= 400 && s < 500) || s === 503;

/** GETs `url`, takes the first chunk, then goes away. */
function abortedDownload(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(res.statusCode ?? 0);
      }
      res.once('data', () => req.destroy());
    });
    req.on('error', () => {});
    req.on('close', () => resolve(200));
  });
}

/** Starts an OpenAI file upload declaring 64 MiB, sends a few hundred KiB of it, and goes away. */
function abortedUpload(url: string): Promise<void> {
  return new Promise((resolve) => {
    const boundary = 'b0undary';
    const req = http.request(url, {
      method: 'POST',
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(64 * 1024 * 1024) },
    });
    req.on('error', () => {});
    req.on('close', () => resolve());
    req.on('response', (res) => res.resume()); // refused early (503): nothing to leave behind either
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`);
    req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n`);
    req.write('{"custom_id":"a"}\n'.repeat(20_000), () => setTimeout(() => req.destroy(), 200));
  });
}

/**
 * Sends hostile requests one after another until `over()`. `oneFeature` names a model of one input
 * feature (the Parquet files' `x` column), `model` a model of `features` inputs named "input".
 */
export async function hostileClient(
  p: TestPlatform,
  over: () => boolean,
  t: HostileTally,
  o: { oneFeature: string; model: string; features: number; bodyLimitMb: number },
) {
  const files = hostileFiles();
  const valid = { inputs: [{ name: 'input', shape: [1, o.features], datatype: 'FP32', data: Array.from({ length: o.features }, (_, i) => i / o.features) }] };
  const badJson = fc.sample(mutatedJson(valid), { numRuns: 200, seed: 25 });
  const line = JSON.stringify({ custom_id: 'a', method: 'POST', url: `/v2/models/${o.model}/infer`, body: valid });
  const badForms = fc.sample(
    mutatedForm([
      { name: 'purpose', value: 'batch' },
      { name: 'file', value: line + '\n', filename: 'in.jsonl', type: 'application/jsonl' },
    ]),
    { numRuns: 200, seed: 26 },
  );
  const oversized = JSON.stringify({ inputs: [{ name: 'input', shape: [1, 1], datatype: 'BYTES', data: ['x'.repeat((o.bodyLimitMb + 1) * 1024 * 1024)] }] });
  const send = async (what: string, url: string, init: RequestInit, expected?: number[]) => {
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(45_000) });
      const text = await res.text();
      if (expected ? !expected.includes(res.status) && res.status !== 503 : res.status >= 500 && res.status !== 503)
        t.bad.push(`${what}: HTTP ${res.status} ${text.slice(0, 200)}`);
      return { status: res.status, text };
    } catch (e) {
      t.bad.push(`${what}: ${(e as Error).name === 'TimeoutError' ? 'no answer in 45 s' : (e as Error).message}`);
      return { status: 0, text: '' };
    }
  };
  const parquet = async (kind: Kind, file: Uint8Array, why: RegExp | undefined) => {
    const r = await send(
      kind,
      `${p.url}/v1/batches?model=${o.oneFeature}`,
      {
        method: 'POST',
        body: Buffer.from(file),
        headers: { 'content-type': 'application/vnd.apache.parquet' },
      },
      why ? [202, 429] : [400, 429],
    );
    if (r.status === 202 && why) t.batches.push({ id: JSON.parse(r.text).id, why });
  };
  const asBody = (b: FuzzedBody): RequestInit => ({
    method: 'POST',
    body: new Uint8Array(b.body),
    headers: b.contentType ? { 'content-type': b.contentType, ...b.headers } : b.headers,
  });
  for (let i = 0; !over(); i++) {
    const kind = HOSTILE_KINDS[i % HOSTILE_KINDS.length]!;
    t.sent[kind] = (t.sent[kind] ?? 0) + 1;
    if (kind === 'parquet-spin') await parquet(kind, files.spin, /ends mid-varint/);
    else if (kind === 'parquet-huge-page') await parquet(kind, files.hugePage, /MODELQ_PARQUET_MAX_PAGE_VALUES/);
    else if (kind === 'parquet-huge-rows') await parquet(kind, files.hugeRows, undefined);
    else if (kind === 'oversized-json')
      await send(kind, `${p.url}/v2/models/${o.model}/infer`, { method: 'POST', body: oversized, headers: { 'content-type': 'application/json' } }, [413]);
    else if (kind === 'aborted-upload') await abortedUpload(`${p.url}/openai/v1/files`);
    else if (kind === 'aborted-download') {
      const s = await abortedDownload(`${p.url}/v1/models/${o.model}/versions/1/onnx`);
      if (s !== 200 && !handled(s)) t.bad.push(`${kind}: HTTP ${s}`);
    } else if (kind === 'bad-json') await send(kind, `${p.url}/v2/models/${o.model}/infer`, asBody(badJson[i % badJson.length]!));
    else await send(kind, `${p.url}/openai/v1/files`, asBody(badForms[i % badForms.length]!));
    await sleep(100);
  }
}

/** Descriptors that processes `pids` hold on files under `dir` (Linux /proc). */
export function openUnder(dir: string, pids: number[]): string[] {
  const held: string[] = [];
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited
    }
    for (const fd of fds) {
      try {
        const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
        if (target.startsWith(dir)) held.push(`${pid}: ${target}`);
      } catch {
        // closed between the listing and the read
      }
    }
  }
  return held;
}

export const tempFilesUnder = (dir: string): string[] =>
  fs.readdirSync(path.resolve(dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp'));

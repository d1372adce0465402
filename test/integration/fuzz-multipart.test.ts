// Property-based fuzzing of the multipart readers (issue 25 item 5): OpenAI-compatible POST /files
// and the native POST /v1/batches (producer/batches/multipart.ts), from a valid form mutated (a
// field dropped, repeated, renamed, reordered or given a hostile value; a hostile file; a wrong file
// type; the body truncated, cut before its closing boundary, under another boundary, with bare LF or
// invalid UTF-8; a wrong content type). Each answer is a 2xx (the valid form) or a 4xx
// `{error: {code, message}}`, never a 5xx and never unanswered; afterwards the platform serves, no
// temp file is left and no descriptor stays open on the store. MODELQ_FUZZ_CASES runs more.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { fuzzCases, fuzzSeed } from '../helpers/fuzz.ts';
import { mutatedForm, sendFuzzed, type FormPart } from '../helpers/fuzz-bodies.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let dataDir: string;

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  dataDir = path.resolve(p.cfg.MODELQ_DATA_DIR);
  expect((await uploadModel(p.url, 'm', buildMlp({ sizes: [4, 3], seed: 1 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const tempFiles = () => fs.readdirSync(dataDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp'));
/** Descriptors this process (the producer runs in it) holds on the store's files. */
function openInStore(): string[] {
  const held: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dataDir)) held.push(target);
    } catch {
      // closed between the listing and the read
    }
  }
  return held;
}

async function fuzz(url: string, valid: FormPart[], cases: number) {
  const statuses: Record<number, number> = {};
  await fc.assert(
    fc.asyncProperty(mutatedForm(valid), async (b) => {
      const s = await sendFuzzed(url, b, 'coded');
      statuses[s] = (statuses[s] ?? 0) + 1;
    }),
    { numRuns: cases, seed: fuzzSeed(), endOnFailure: true },
  );
  console.log(`fuzz ${url.replace(p.url, '')}: ${cases} multipart cases`, statuses);
  expect(Object.keys(statuses).some((s) => Number(s) < 300)).toBe(true);
  expect(Object.keys(statuses).some((s) => Number(s) >= 400)).toBe(true);
  // Healthy afterwards, with nothing left behind once the batches the valid forms made are done.
  expect((await fetch(`${p.url}/v2/health/ready`)).status).toBe(200);
  expect(p.workers.every((w) => w.child.exitCode === null)).toBe(true);
  await until(() => tempFiles().length === 0 && openInStore().length === 0, 'no temp file and no descriptor left on the store', 30_000);
}

const lines = '{"input":[1,2,3,4]}\n{"input":[4,3,2,1]}\n';

describe('fuzzed multipart bodies', () => {
  it('OpenAI POST /files: mutated forms get 2xx or {error: {code, message}} 4xx, and leave no temp file', async () => {
    const line = JSON.stringify({
      custom_id: 'a',
      method: 'POST',
      url: '/v2/models/m/infer',
      body: { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
    });
    await fuzz(
      `${p.url}/openai/v1/files`,
      [
        { name: 'purpose', value: 'batch' },
        { name: 'file', value: line + '\n', filename: 'in.jsonl', type: 'application/jsonl' },
      ],
      fuzzCases(300),
    );
  }, 60_000);

  it('native POST /v1/batches: mutated forms get 2xx or {error: {code, message}} 4xx, and leave no temp file', async () => {
    await fuzz(
      `${p.url}/v1/batches`,
      [
        { name: 'model', value: 'm' },
        { name: 'format', value: 'jsonl' },
        { name: 'chunkRows', value: '1000' },
        { name: 'file', value: lines, filename: 'in.jsonl', type: 'application/x-ndjson' },
      ],
      fuzzCases(300),
    );
  }, 60_000);
});

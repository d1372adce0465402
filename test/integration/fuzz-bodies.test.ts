// Property-based fuzzing of the JSON bodies (issue 25 item 5): valid Open Inference Protocol /v2
// infer, KServe :predict and OpenAI-compatible POST /batches bodies, each mutated (a value replaced
// by a wrong type, a huge number, count or shape, deep nesting or a giant string within the body
// limit; a key removed or added; bytes truncated, flipped or made invalid UTF-8; a wrong content
// type). Each answer is a 2xx (the valid body) or a 4xx of the route's error shape, never a 5xx and
// never unanswered; the platform serves afterwards. MODELQ_FUZZ_CASES runs more cases, and
// MODELQ_FUZZ_SEED replays a reported seed.
import fs from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { fuzzCases, fuzzSeed } from '../helpers/fuzz.ts';
import { mutatedJson, sendFuzzed } from '../helpers/fuzz-bodies.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
let fileId: string;

beforeAll(async () => {
  // A small body limit, so that giant strings and counts both fit under it and cross it.
  p = await startPlatform({ workers: 1, env: { MODELQ_MAX_REQUEST_MB: '2' } });
  expect((await uploadModel(p.url, 'm', buildMlp({ sizes: [4, 3], seed: 1 }))).status).toBe(201);
  const line = JSON.stringify({
    custom_id: 'a',
    method: 'POST',
    url: '/v2/models/m/infer',
    body: { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
  });
  const form = new FormData();
  form.append('purpose', 'batch');
  form.append('file', new Blob([line + '\n']), 'in.jsonl');
  const res = await fetch(`${p.url}/openai/v1/files`, { method: 'POST', body: form });
  expect(res.status).toBe(200);
  fileId = ((await res.json()) as { id: string }).id;
});
afterAll(async () => {
  await p?.stop();
});

const infer = {
  id: 'r1',
  inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8], parameters: { content_type: 'float' } }],
  parameters: { priority: 1 },
};

/** The platform still serves: ready, its worker alive, a valid request answered, no temp file left behind. */
async function expectHealthy() {
  expect((await fetch(`${p.url}/v2/health/ready`)).status).toBe(200);
  expect(p.workers.every((w) => w.child.exitCode === null)).toBe(true);
  const res = await fetch(`${p.url}/v2/models/m/infer`, { method: 'POST', body: JSON.stringify(infer), headers: { 'content-type': 'application/json' } });
  expect(res.status).toBe(200);
  expect((await res.json()).outputs[0].shape).toEqual([2, 3]);
  // Batches the valid bodies created write as they run: every temp file is gone once they are done.
  const temps = () => fs.readdirSync(p.cfg.MODELQ_DATA_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp'));
  await until(() => temps().length === 0, 'no temp file left', 30_000);
}

/** Runs `cases` of `arb` against `url`; returns how many of each status came back. */
async function fuzz(url: string, arb: ReturnType<typeof mutatedJson>, shape: 'oip' | 'coded', cases: number) {
  const statuses: Record<number, number> = {};
  await fc.assert(
    fc.asyncProperty(arb, async (b) => {
      const s = await sendFuzzed(url, b, shape);
      statuses[s] = (statuses[s] ?? 0) + 1;
    }),
    { numRuns: cases, seed: fuzzSeed(), endOnFailure: true },
  );
  console.log(`fuzz ${url.replace(p.url, '')}: ${cases} cases`, statuses);
  // Both sides were exercised: valid bodies answered, broken ones refused.
  expect(Object.keys(statuses).some((s) => Number(s) < 300)).toBe(true);
  expect(Object.keys(statuses).some((s) => Number(s) >= 400)).toBe(true);
  return statuses;
}

describe('fuzzed request bodies', () => {
  it('/v2 infer: mutated OIP bodies (and a binary-extension header it does not take) get 2xx or {error: string} 4xx', async () => {
    // The binary data extension is not supported: its header on a JSON body must not change that.
    const binaryHeader = fc.oneof(
      { weight: 4, arbitrary: fc.constant({}) },
      { weight: 1, arbitrary: fc.constantFrom('0', '10', '-1', '99999999999', 'x').map((v) => ({ 'inference-header-content-length': v })) },
    );
    await fuzz(`${p.url}/v2/models/m/infer`, mutatedJson(infer, binaryHeader), 'oip', fuzzCases(400));
    await expectHealthy();
  }, 60_000);

  it('KServe :predict: mutated instances bodies get 2xx or {error: {code, message}} 4xx', async () => {
    await fuzz(
      `${p.url}/v1/models/m:predict`,
      mutatedJson({
        instances: [
          [1, 2, 3, 4],
          [4, 3, 2, 1],
        ],
        parameters: { device: 'cpu' },
      }),
      'coded',
      fuzzCases(300),
    );
    await expectHealthy();
  }, 60_000);

  it('OpenAI POST /batches: mutated bodies get 2xx or {error: {code, message}} 4xx', async () => {
    const valid = { input_file_id: fileId, endpoint: '/v2/models/m/infer', completion_window: '24h', metadata: { run: 'fuzz' } };
    await fuzz(`${p.url}/openai/v1/batches`, mutatedJson(valid), 'coded', fuzzCases(200));
    await expectHealthy();
  }, 60_000);
});

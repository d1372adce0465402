// Thousands of malformed requests across every route (wrong types, huge numbers, deep nesting,
// invalid UTF-8, wrong content types, path tricks): no 5xx, no crashed process, every answer JSON.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { ROUTES } from '../../producer/openapi.ts';
import { startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'm', buildMlp({ sizes: [4, 3], seed: 1 }))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

const segment = fc.oneof(
  fc.constantFrom('m', 'nosuch', '..', '%2e%2e', '%00', 'a'.repeat(300), 'batch_00000000000000000000', '1', '0', '-1', '99999999999', 'latest', '%ff%fe', '💥', '..%2f..%2fetc%2fpasswd', ''),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);
const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const body = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.constantFrom('{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1e400,2,3,4]}]}',
    '{"inputs":[{"name":"input","shape":[99999999999,99999999999],"datatype":"FP32","data":[]}]}',
    '{"inputs":[{"name":"input","shape":[-1,4],"datatype":"FP32","data":[1,2,3,4]}]}',
    '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":"abcd"}]}',
    '{"inputs":{"0":1}}', '{"version":"1"}', '{"version":1e300}', '{"maxBatch":-5}', '{"__proto__":{"x":1}}',
    `{"inputs":${deep(5000)}}`, deep(100000), 'null', '[]', '"str"', '{"a":', '\u0000'),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.concat([Buffer.from('{"inputs":"'), Buffer.from(a), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]).toString('latin1')),
);
const contentType = fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', 'multipart/form-data; boundary=x', 'text/csv', 'application/x-ndjson', 'application/json; charset=utf-16', '', 'garbage/;;;');
const query = fc.constantFrom('', '?model=m', '?model=nosuch', '?model=m&chunkRows=abc', '?model=m&format=xml', '?offset=-1&limit=1e9', '?format=csv', '?model=m@0', '?model=' + 'x'.repeat(5000));

describe('fuzz', () => {
  it('answers thousands of malformed requests with 4xx JSON errors and never 5xx', async () => {
    let count = 0;
    await fc.assert(fc.asyncProperty(fc.constantFrom(...ROUTES), segment, segment, body, contentType, query, fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'), fc.boolean(),
      async (route, s1, s2, b, ct, q, otherMethod, useRouteMethod) => {
        count++;
        const path = route.path.replace('{name}', s1).replace('{version}', s2).replace('{alias}', s2).replace('{id}', s1);
        const method = useRouteMethod ? route.method.toUpperCase() : otherMethod;
        const hasBody = method !== 'GET' && method !== 'DELETE';
        const res = await fetch(`${p.url}${path}${q}`, {
          method, ...(hasBody ? { body: Buffer.from(b, 'latin1') } : {}), headers: ct ? { 'content-type': ct } : {}, signal: AbortSignal.timeout(15_000),
        });
        const text = await res.text();
        if (res.status >= 500) throw new Error(`${method} ${path}${q} (${ct}) -> ${res.status} ${text.slice(0, 200)}`);
        if (res.status >= 400) {
          const parsed = JSON.parse(text);
          if (!parsed.error) throw new Error(`${method} ${path}: error body without "error": ${text.slice(0, 200)}`);
          if (text.includes('    at ')) throw new Error(`${method} ${path}: a stack trace leaked`);
        }
      }), { numRuns: 3000, seed: 42 });
    expect(count).toBe(3000);
    expect(p.workers.every((w) => w.child.exitCode === null)).toBe(true);
    expect((await fetch(`${p.url}/v2/health/ready`)).status).toBe(200);
    console.log(`fuzz: ${count} malformed requests`);
  }, 300_000);
});

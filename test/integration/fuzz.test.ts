// Thousands of malformed requests across every route (wrong types, huge numbers, deep nesting,
// invalid UTF-8, wrong content types, path tricks), and malformed multipart bodies on every route
// that reads a body: no 5xx, no crashed process, every answer JSON.
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
  fc.constantFrom(
    'm',
    'nosuch',
    '..',
    '%2e%2e',
    '%00',
    'a'.repeat(300),
    'batch_00000000000000000000',
    '1',
    '0',
    '-1',
    '99999999999',
    'latest',
    '%ff%fe',
    '💥',
    '..%2f..%2fetc%2fpasswd',
    '',
    'train_00000000000000000000',
    'compress_00000000000000000000',
    'ds_00000000000000000000',
    'train_',
    'compress_x',
    '__proto__',
    'constructor',
  ),
  fc.string({ maxLength: 20 }).map(encodeURIComponent),
);
const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const body = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.constantFrom(
    '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1e400,2,3,4]}]}',
    '{"inputs":[{"name":"input","shape":[99999999999,99999999999],"datatype":"FP32","data":[]}]}',
    '{"inputs":[{"name":"input","shape":[-1,4],"datatype":"FP32","data":[1,2,3,4]}]}',
    '{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":"abcd"}]}',
    '{"inputs":{"0":1}}',
    '{"version":"1"}',
    '{"version":1e300}',
    '{"maxBatch":-5}',
    '{"__proto__":{"x":1}}',
    `{"inputs":${deep(5000)}}`,
    deep(100000),
    'null',
    '[]',
    '"str"',
    '{"a":',
    '\u0000',
    // The job and sharing routes' bodies, each wrong in one way.
    '{"dataset":"ds_00000000000000000000","target":"y","registerAs":"m"}',
    '{"dataset":1,"target":[],"registerAs":"UPPER"}',
    '{"dataset":"x","target":"y","registerAs":"m","epochs":1e9,"model":{"type":"mlp","hidden":[0]}}',
    '{"model":"m","method":"quantize-int8","options":{"perChannel":"yes"}}',
    '{"model":"m","method":"distill"}',
    '{"model":"m","method":"prune","options":{"sparsity":2}}',
    '{"model":"m@99","method":"fp16","registerAs":"../x"}',
    '{"model":"m","method":"fp16","features":["a"]}',
    '{"shared":"yes"}',
    '{"shared":true,"extra":1}',
    '{"shared":null}',
  ),
  fc
    .uint8Array({ maxLength: 64 })
    .map((a) => Buffer.concat([Buffer.from('{"inputs":"'), Buffer.from(a), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]).toString('latin1')),
);
const contentType = fc.constantFrom(
  'application/json',
  'text/plain',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'text/csv',
  'application/x-ndjson',
  'application/json; charset=utf-16',
  '',
  'garbage/;;;',
);
const query = fc.constantFrom(
  '',
  '?model=m',
  '?model=nosuch',
  '?model=m&chunkRows=abc',
  '?model=m&format=xml',
  '?offset=-1&limit=1e9',
  '?format=csv',
  '?model=m@0',
  '?model=' + 'x'.repeat(5000),
);

/** A multipart body, well-formed or broken in one of the ways clients and attackers break them. */
const multipart = fc
  .record({
    boundary: fc.constantFrom('x', 'b0undary', '----WebKitFormBoundary7MA4YWxkTrZu0gW', 'a'.repeat(71)),
    parts: fc.array(
      fc.record({
        name: fc.constantFrom('file', 'model', 'format', 'chunkRows', 'metadata', 'purpose', 'x'.repeat(300), '', 'fi"le'),
        filename: fc.option(fc.constantFrom('in.jsonl', 'in.csv', '../../etc/passwd', 'a'.repeat(500), 'é.csv'), { nil: undefined }),
        type: fc.constantFrom('application/x-ndjson', 'text/csv', 'application/octet-stream', ''),
        content: fc.oneof(
          fc.constantFrom('m', '{"input":[1,2,3,4]}\n{"input":[4,3,2,1]}', 'a,b\n1,2', '{"metadata":1}', '999999999999', 'csv', ''),
          fc.string({ maxLength: 50 }),
        ),
      }),
      { maxLength: 6 },
    ),
    flaw: fc.constantFrom('none', 'truncated', 'no-closing', 'wrong-boundary', 'no-headers', 'bare-lf'),
  })
  .map(({ boundary, parts, flaw }) => {
    const nl = flaw === 'bare-lf' ? '\n' : '\r\n';
    const used = flaw === 'wrong-boundary' ? 'other' : boundary;
    let text = parts
      .map(
        (p) =>
          `--${used}${nl}${flaw === 'no-headers' ? '' : `Content-Disposition: form-data; name="${p.name}"${p.filename !== undefined ? `; filename="${p.filename}"` : ''}${nl}${p.type ? `Content-Type: ${p.type}${nl}` : ''}`}${nl}${p.content}${nl}`,
      )
      .join('');
    if (flaw !== 'no-closing') text += `--${used}--${nl}`;
    if (flaw === 'truncated') text = text.slice(0, Math.floor(text.length / 2));
    return {
      body: text,
      type: `multipart/form-data; boundary=${boundary}`,
      broken: flaw === 'truncated' || flaw === 'no-closing' || flaw === 'wrong-boundary' || flaw === 'no-headers',
    };
  });

/**
 * Answers that show a request was handled, not crashed on: a 2xx, or a 4xx whose body is JSON with
 * an "error" and no stack trace. `broken` says the request could not be valid (a broken form), so
 * only a 4xx will do. Returns the status.
 */
async function expectHandled(res: Response, what: string, broken = false): Promise<number> {
  const text = await res.text();
  const ok = res.status >= 200 && res.status < 300;
  const refused = res.status >= 400 && res.status < 500;
  if (!refused && (broken || !ok)) throw new Error(`${what} -> ${res.status}${broken ? ' (a broken body must be a 4xx)' : ''} ${text.slice(0, 200)}`);
  if (refused) {
    const parsed = JSON.parse(text);
    if (!parsed.error) throw new Error(`${what}: error body without "error": ${text.slice(0, 200)}`);
    if (text.includes('    at ')) throw new Error(`${what}: a stack trace leaked`);
  }
  return res.status;
}

describe('fuzz', () => {
  it('answers multipart bodies on every route that reads a body with 2xx or a 4xx JSON error, and every broken form with a 4xx', async () => {
    const writes = ROUTES.filter((r) => r.method !== 'get' && r.method !== 'delete');
    let count = 0;
    let brokenRefused = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...writes), multipart, fc.constantFrom('', '?model=m', '?model=nosuch', '?format=csv&model=m'), async (route, mp, q) => {
        count++;
        const path = route.path.replace('{name}', 'm').replace('{version}', '1').replace('{alias}', 'prod').replace('{id}', 'batch_00000000000000000000');
        const res = await fetch(`${p.url}${path}${q}`, {
          method: route.method.toUpperCase(),
          body: mp.body,
          headers: { 'content-type': mp.type },
          signal: AbortSignal.timeout(15_000),
        });
        const status = await expectHandled(res, `${route.method} ${path}${q} multipart${mp.broken ? ' (broken)' : ''}`, mp.broken);
        if (mp.broken && status >= 400) brokenRefused++;
      }),
      { numRuns: 600, seed: 7 },
    );
    expect(count).toBe(600);
    expect(brokenRefused).toBeGreaterThan(100); // the broken forms were generated, and each refused
    expect(p.workers.every((w) => w.child.exitCode === null)).toBe(true);
    console.log(`fuzz: ${count} multipart requests, ${brokenRefused} broken forms refused`);
  }, 300_000);

  it('answers thousands of mostly malformed requests with 2xx or a 4xx JSON error, never 5xx or anything else', async () => {
    let count = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        segment,
        segment,
        body,
        contentType,
        query,
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
        fc.boolean(),
        async (route, s1, s2, b, ct, q, otherMethod, useRouteMethod) => {
          count++;
          const path = route.path.replace('{name}', s1).replace('{version}', s2).replace('{alias}', s2).replace('{id}', s1);
          const method = useRouteMethod ? route.method.toUpperCase() : otherMethod;
          const hasBody = method !== 'GET' && method !== 'DELETE';
          const res = await fetch(`${p.url}${path}${q}`, {
            method,
            ...(hasBody ? { body: Buffer.from(b, 'latin1') } : {}),
            headers: ct ? { 'content-type': ct } : {},
            signal: AbortSignal.timeout(15_000),
          });
          const status = await expectHandled(res, `${method} ${path}${q} (${ct})`);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        },
      ),
      { numRuns: 3000, seed: 42 },
    );
    expect(count).toBe(3000);
    const refused = [...statuses].filter(([s]) => s >= 400).reduce((n, [, c]) => n + c, 0);
    expect(refused).toBeGreaterThan(count / 2); // malformed requests are refused, not waved through
    expect(p.workers.every((w) => w.child.exitCode === null)).toBe(true);
    expect((await fetch(`${p.url}/v2/health/ready`)).status).toBe(200);
    console.log(`fuzz: ${count} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  }, 300_000);
});

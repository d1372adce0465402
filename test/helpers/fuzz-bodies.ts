// Hostile request bodies made from valid ones (fast-check arbitraries) and the check that an answer
// to one was handled: a JSON body is parsed, one value anywhere in it is replaced, removed or
// inflated (wrong types, huge numbers and counts, deep nesting, giant strings), then its bytes may be
// truncated, flipped or given invalid UTF-8, and it is sent under a right or wrong content type.
// A multipart form is built from fields and may lose, repeat or rename them, or be broken as bytes.
import fc from 'fast-check';
import { expect } from 'vitest';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Path = (string | number)[];

const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

/** Values that break a field: each stands for itself or is spliced in as raw text (`raw:`). */
const hostileValue: fc.Arbitrary<Json | { raw: string }> = fc.oneof(
  fc.constantFrom<Json | { raw: string }>(
    null,
    true,
    0,
    -1,
    1.5,
    2 ** 31,
    2 ** 53 + 2,
    1e9,
    1e308,
    -1e308,
    '',
    'FP32',
    'BYTES',
    'INT64',
    '__proto__',
    [],
    {},
    [[]],
    [-1, -1],
    [1e9, 1e9],
    [2 ** 31, 2 ** 31, 2 ** 31],
    { b64: '!!!' },
    { raw: '1e400' },
    { raw: '-0' },
    { raw: deepArray(3000) },
    { raw: deepObject(3000) },
    { raw: '"\\ud800"' },
    { raw: '"' + 'x'.repeat(600_000) + '"' },
    { raw: '"' + 'y'.repeat(2_500_000) + '"' }, // past a 2 MiB body limit
    { raw: '[' + Array(150_000).fill('1').join(',') + ']' },
    {
      raw:
        '[' +
        Array(20_000)
          .fill('"' + 'w'.repeat(20) + '"')
          .join(',') +
        ']',
    },
    { raw: '{' + Array.from({ length: 20_000 }, (_, i) => `"k${i}":${i}`).join(',') + '}' },
  ),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
  fc.string({ maxLength: 40 }),
);

function paths(v: Json, at: Path = [], out: Path[] = []): Path[] {
  out.push(at);
  if (Array.isArray(v)) v.slice(0, 8).forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const k of Object.keys(v)) paths(v[k]!, [...at, k], out);
  return out;
}

const RAW = '\u0000raw\u0000';

/** `valid` with the value at `path` replaced (raw text kept aside and spliced in after stringify), or removed. */
function edit(valid: Json, path: Path, value: Json | { raw: string } | undefined): string {
  const copy = structuredClone(valid);
  const raw = value && typeof value === 'object' && !Array.isArray(value) && 'raw' in value ? (value.raw as string) : undefined;
  const put: Json | undefined = raw !== undefined ? RAW : (value as Json | undefined);
  if (path.length === 0) return raw ?? JSON.stringify(put ?? null);
  let parent = copy as Record<string | number, Json>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  if (put === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = put;
  const text = JSON.stringify(copy);
  return raw !== undefined ? text.replace(JSON.stringify(RAW), () => raw) : text;
}

export type ByteFlaw = 'none' | 'truncate' | 'bad-utf8' | 'flip' | 'bom' | 'nul';

function spoil(text: string, flaw: ByteFlaw, at: number): Buffer {
  const b = Buffer.from(text);
  const i = Math.floor(at * b.length);
  switch (flaw) {
    case 'none':
      return b;
    case 'truncate':
      return b.subarray(0, i);
    case 'bad-utf8':
      return Buffer.concat([b.subarray(0, i), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), b.subarray(i)]);
    case 'flip': {
      const c = Buffer.from(b);
      const j = Math.min(i, c.length - 1);
      if (c.length) c[j] = c[j]! ^ 0x5a;
      return c;
    }
    case 'bom':
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), b]);
    case 'nul':
      return Buffer.concat([b.subarray(0, i), Buffer.from([0]), b.subarray(i)]);
  }
}

export interface FuzzedBody {
  /** Unchanged from the valid body (content type included): must succeed. */
  valid: boolean;
  body: Buffer;
  contentType: string;
  headers: Record<string, string>;
  what: string;
}

const JSON_TYPE = 'application/json';
/** `arb` one time in eight, else undefined. */
const rarely = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
const WRONG_TYPES = [
  'text/plain',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/x-www-form-urlencoded',
  '',
];

/** Mutations of the JSON body `valid`; about one case in ten is `valid` itself. */
export function mutatedJson(valid: Json, extraHeaders: fc.Arbitrary<Record<string, string>> = fc.constant({})): fc.Arbitrary<FuzzedBody> {
  const all = paths(valid);
  return fc
    .record({
      keep: fc.nat(9).map((n) => n === 0),
      path: fc.constantFrom(...all),
      op: fc.constantFrom('replace', 'replace', 'replace', 'remove', 'add-key'),
      value: hostileValue,
      key: fc.constantFrom('__proto__', 'constructor', 'toString', 'extra', '', 'inputs', 'shape', 'data', 'instances'),
      flaw: fc.constantFrom<ByteFlaw>('none', 'none', 'none', 'truncate', 'bad-utf8', 'flip', 'bom', 'nul'),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      wrongType: rarely(fc.constantFrom(...WRONG_TYPES)),
      headers: extraHeaders,
    })
    .map((c) => {
      if (c.keep) return { valid: true, body: Buffer.from(JSON.stringify(valid)), contentType: JSON_TYPE, headers: {}, what: 'valid' };
      let text: string;
      if (c.op === 'remove') text = edit(valid, c.path, undefined);
      // A key added at the top (a prototype name, a repeated key: JSON.parse keeps the last).
      else if (c.op === 'add-key') text = JSON.stringify(valid).replace(/^\{/, `{${JSON.stringify(c.key)}:${JSON.stringify(c.value)},`);
      else text = edit(valid, c.path, c.value);
      const what = `${c.op} ${JSON.stringify(c.path)} ${c.op === 'remove' ? '' : JSON.stringify(c.value)?.slice(0, 60)} flaw=${c.flaw} type=${c.wrongType ?? JSON_TYPE}`;
      return { valid: false, body: spoil(text, c.flaw, c.at), contentType: c.wrongType ?? JSON_TYPE, headers: c.headers, what };
    });
}

export interface FormPart {
  name: string;
  value: string | Buffer;
  filename?: string;
  type?: string;
}

/** A multipart/form-data body of `parts`, CRLF-delimited as browsers and the SDKs send it. */
export function formBody(parts: FormPart[], boundary: string, nl = '\r\n'): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}${nl}Content-Disposition: form-data; name="${p.name}"`;
    if (p.filename !== undefined) head += `; filename="${p.filename}"`;
    head += nl;
    if (p.type) head += `Content-Type: ${p.type}${nl}`;
    chunks.push(Buffer.from(head + nl), Buffer.from(p.value), Buffer.from(nl));
  }
  chunks.push(Buffer.from(`--${boundary}--${nl}`));
  return Buffer.concat(chunks);
}

/** Mutations of the valid form `valid`; about one case in ten is the valid form itself. */
export function mutatedForm(valid: FormPart[]): fc.Arbitrary<FuzzedBody> {
  const hostileText = fc.oneof(
    fc.constantFrom('', 'x'.repeat(9000), '-1', '0', '1e9', '99999999999999999999', 'null', '{"a":', '\u0000', 'batch', 'jsonl', 'parquet', 'csv'),
    fc.string({ maxLength: 30 }),
  );
  const hostileFile = fc.constantFrom(
    Buffer.from(''),
    Buffer.from('{"a":1'),
    Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x0a]),
    Buffer.from('PAR1\0\0\0\0PAR1'),
    Buffer.from('a,b\n"open,2\n'),
    Buffer.from('[' + deepArray(5000) + ']\n'),
    Buffer.from('{"custom_id":"' + 'c'.repeat(200_000) + '"}\n'),
    Buffer.from('x'.repeat(300_000)),
  );
  return fc
    .record({
      keep: fc.nat(9).map((n) => n === 0),
      part: fc.nat(valid.length - 1),
      op: fc.constantFrom('value', 'value', 'drop', 'duplicate', 'rename', 'file-type', 'reorder'),
      text: hostileText,
      file: hostileFile,
      name: fc.constantFrom('file', 'purpose', 'model', 'x'.repeat(300), '', 'fi"le', 'chunkRows', 'format'),
      type: fc.constantFrom('application/x-ndjson', 'text/csv', 'application/vnd.apache.parquet', 'application/octet-stream', 'image/png', ''),
      boundary: fc.constantFrom('b0undary', 'x', 'a'.repeat(70)),
      flaw: fc.constantFrom('none', 'none', 'none', 'truncate', 'no-closing', 'wrong-boundary', 'bare-lf', 'bad-utf8', 'no-boundary'),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      wrongType: rarely(fc.constantFrom('application/json', 'text/plain', 'application/octet-stream', '')),
    })
    .map((c) => {
      const boundary = c.boundary;
      if (c.keep) return { valid: true, body: formBody(valid, boundary), contentType: `multipart/form-data; boundary=${boundary}`, headers: {}, what: 'valid' };
      let parts = valid.map((p) => ({ ...p }));
      const p = parts[c.part]!;
      if (c.op === 'value') p.value = p.filename !== undefined ? c.file : c.text;
      else if (c.op === 'drop') parts.splice(c.part, 1);
      else if (c.op === 'duplicate') parts.push({ ...p });
      else if (c.op === 'rename') p.name = c.name;
      else if (c.op === 'file-type') p.type = c.type;
      else parts = [...parts.slice(c.part), ...parts.slice(0, c.part)];
      const nl = c.flaw === 'bare-lf' ? '\n' : '\r\n';
      let body = formBody(parts, c.flaw === 'wrong-boundary' ? 'other' : boundary, nl);
      if (c.flaw === 'no-closing') body = body.subarray(0, body.length - `--${boundary}--${nl}`.length);
      if (c.flaw === 'truncate' || c.flaw === 'bad-utf8') body = spoil(body.toString('latin1'), c.flaw, c.at);
      const contentType = c.wrongType ?? (c.flaw === 'no-boundary' ? 'multipart/form-data' : `multipart/form-data; boundary=${boundary}`);
      const what = `${c.op} part ${c.part} flaw=${c.flaw} type=${contentType.slice(0, 40)}`;
      return { valid: false, body, contentType, headers: {}, what };
    });
}

export type ErrorShape = 'oip' | 'coded';

/**
 * Sends `b` and checks the answer: never 5xx; the valid body succeeds; an error is JSON of the
 * route's shape (/v2: `{error: string}`; else `{error: {code, message}}`), without a stack. The
 * request has `timeoutMs` to be answered (a bound on a hang, not a timing assertion).
 */
export async function sendFuzzed(url: string, b: FuzzedBody, shape: ErrorShape, timeoutMs = 20_000): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    body: new Uint8Array(b.body),
    headers: { ...(b.contentType ? { 'content-type': b.contentType } : {}), ...b.headers },
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  const where = `${url} ${b.what} -> ${res.status} ${text.slice(0, 300)}`;
  expect(res.status, where).toBeLessThan(500);
  if (b.valid) expect(res.status, where).toBeLessThan(300);
  if (res.status >= 400) {
    const body = JSON.parse(text);
    if (shape === 'oip') expect(typeof body.error, where).toBe('string');
    else {
      expect(typeof body.error?.code, where).toBe('string');
      expect(typeof body.error?.message, where).toBe('string');
    }
    expect(text, where).not.toMatch(/\n\s+at /);
  }
  return res.status;
}

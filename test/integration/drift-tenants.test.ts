// Drift of a shared model counts only its owner's traffic (#25 case 14): another tenant's online
// requests and batches neither become the version's reference (its first N scored rows) nor enter
// the owner's window, so they cannot make the owner's report alert.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linearModel } from '../fixtures/explain-models.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const KEYS = {
  'owner-key-0123456789': { tenant: 'acme', scopes: ['admin'] },
  'other-key-0123456789': { tenant: 'globex', scopes: ['infer', 'submit', 'read'] },
};
const OWNER = 'owner-key-0123456789';
const OTHER = 'other-key-0123456789';
const as = (key: string, init: RequestInit = {}): RequestInit => ({
  ...init,
  headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...(init.headers ?? {}) },
});
const REFERENCE_ROWS = 200;

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({
    workers: 1,
    env: {
      MODELQ_API_KEYS: JSON.stringify(KEYS),
      MODELQ_DRIFT_SAMPLE: '1',
      MODELQ_DRIFT_WINDOW: '100000',
      MODELQ_DRIFT_REFERENCE_ROWS: String(REFERENCE_ROWS),
    },
  });
  const up = await fetch(
    `${p.url}/v1/models/shared/versions`,
    as(OWNER, { method: 'POST', body: Buffer.from(linearModel([1, -1])), headers: { 'content-type': 'application/octet-stream' } }),
  );
  expect(up.status).toBe(201);
  const share = await fetch(`${p.url}/v1/models/shared/sharing`, as(OWNER, { method: 'PUT', body: JSON.stringify({ shared: true }) }));
  expect(share.status).toBe(200);
}, 60_000);
afterAll(async () => {
  await p?.stop();
});

/** `n` rows: the owner's around 0 (seeded), the other tenant's far away (1000 + i). */
const rowsOf = (n: number, far: boolean, seed = 1) => {
  let s = seed;
  const u = () => ((s = (s * 1103515245 + 12345) % 2147483648) + 1) / 2147483649;
  return Array.from({ length: n }, (_, i) => (far ? [1000 + i, 2000 + i] : [u() * 2 - 1, u() * 2 - 1]));
};
const infer = (key: string, rows: number[][]) =>
  fetch(
    `${p.url}/v2/models/shared/infer`,
    as(key, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 2], data: rows.flat() }] }) }),
  );
const drift = async () => fetch(`${p.url}/v1/models/shared/versions/1/drift`, as(OWNER));

describe('drift of a shared model', () => {
  it("takes neither the reference nor the window from another tenant's rows", async () => {
    // Another tenant's batch first: every row scored, none gathered for the reference.
    const body = rowsOf(300, true)
      .map((r) => JSON.stringify({ features: r }))
      .join('\n');
    const sub = await fetch(`${p.url}/v1/batches?model=shared`, as(OTHER, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } }));
    const accepted = await sub.json();
    expect(sub.status, JSON.stringify(accepted)).toBe(202);
    await until(async () => {
      const v = await (await fetch(`${p.url}/v1/batches/${accepted.id}`, as(OTHER))).json();
      return v.status === 'completed' ? v : null;
    }, 'the batch to complete');
    // A chunk flushes its drift rows before it is recorded: had they counted, the reference would exist now.
    expect((await drift()).status).toBe(409);

    // Online: the other tenant's rows, then the owner's; the reference is the owner's rows only.
    for (let k = 0; k < 3; k++) expect((await infer(OTHER, rowsOf(100, true))).status).toBe(200);
    for (let k = 0; k < 3; k++) expect((await infer(OWNER, rowsOf(100, false, 1 + k))).status).toBe(200);
    const first = await until(async () => {
      const r = await drift();
      return r.status === 200 ? r.json() : null;
    }, 'the reference from the first scored rows');
    expect(first.referenceRows).toBe(REFERENCE_ROWS);

    // Then both send again: the owner's window holds the owner's rows only, from the reference's
    // distribution; the other tenant's far rows would have made it alert.
    for (let k = 0; k < 10; k++) expect((await infer(OTHER, rowsOf(100, true))).status).toBe(200);
    for (let k = 0; k < 5; k++) expect((await infer(OWNER, rowsOf(100, false, 10 + k))).status).toBe(200);
    const d = await until(async () => {
      const r = await (await drift()).json();
      return r.rows >= 500 ? r : null;
    }, "the owner's 500 rows in the window");
    // at most the owner's 800 rows less the reference's 200 (the other tenant's 1,000 would pass it)
    expect(d.rows).toBeLessThanOrEqual(600);
    // (200 reference rows against 500: sampling noise may warn; the far rows would alert)
    expect(d.level, JSON.stringify(d)).not.toBe('alert');
  }, 120_000);
});

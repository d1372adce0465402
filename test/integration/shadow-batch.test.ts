// Batches over versions: a shadow batch (shadowVersion) is scored by both versions and its
// comparison report equals the comparison, made here, of two separate batches of the same file; a
// batch over a weighted alias is scored chunk by chunk by the split's versions, every output row
// naming its version (JSONL model_version, a CSV and a Parquet column).
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pickWeighted } from '../../core/routing.ts';
import { rows, tinyMlp } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
const F = 4;
const N = 600;
const x = rows(N, F, 11);
// Every 50th row is bad (3 values): an error row in every batch, compared by neither.
const file =
  Array.from({ length: N }, (_, i) => JSON.stringify({ id: `r${i}`, input: Array.from(x.subarray(i * F, (i + (i % 50 === 7 ? 0.75 : 1)) * F)) })).join('\n') +
  '\n';

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  for (const seed of [1, 2]) expect((await uploadModel(p.url, 'pair', tinyMlp(seed))).status).toBe(201);
});
afterAll(async () => {
  await p?.stop();
});

type Out = { row: number; id: string; model_version?: number; outputs: { output: number[] } };
const lines = <T>(text: string): T[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);

async function submit(query: string): Promise<string> {
  const res = await fetch(`${p.url}/v1/batches?${query}`, { method: 'POST', body: file, headers: { 'content-type': 'application/x-ndjson' } });
  const body = (await res.json()) as { id: string };
  expect(res.status, JSON.stringify(body)).toBe(202);
  return body.id;
}
async function done(id: string) {
  const v = await until(
    async () => {
      const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string };
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    180_000,
  );
  expect(v).toMatchObject({ status: 'completed', requestCounts: { total: N, completed: N - N / 50, failed: N / 50 } });
}
const output = async (id: string) => lines<Out>(await (await fetch(`${p.url}/v1/batches/${id}/output`)).text());
const argmax = (v: number[]) => v.reduce((b, x, j) => (x > v[b]! ? j : b), 0);

describe('a shadow batch', () => {
  it('is refused with a version that does not exist or already scores it', async () => {
    for (const [q, msg] of [
      ['model=pair@1&shadowVersion=9', /no version 9/],
      ['model=pair@1&shadowVersion=1', /already scores/],
      ['model=pair@1&shadowVersion=2&outputFormat=csv', /JSONL parts/],
    ] as const) {
      const res = await fetch(`${p.url}/v1/batches?${q}`, { method: 'POST', body: file, headers: { 'content-type': 'application/x-ndjson' } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(msg);
    }
  });

  it('gets a report equal to the comparison of two separate batches of the same file, and the rows that differ', async () => {
    const [shadowId, oneId, twoId] = [
      await submit('model=pair@1&shadowVersion=2&chunkRows=128'),
      await submit('model=pair@1&chunkRows=128'),
      await submit('model=pair@2&chunkRows=200'),
    ];
    for (const id of [shadowId, oneId, twoId]) await done(id);
    const [one, two, primary] = [await output(oneId), await output(twoId), await output(shadowId)];
    // The shadow batch's own output is the primary's, each row naming its version.
    expect(primary.map(({ model_version: _v, ...o }) => o)).toEqual(one);
    expect(new Set(primary.map((o) => o.model_version))).toEqual(new Set([1]));

    // The comparison, made here from the two separate batches.
    const byRow = new Map(two.map((o) => [o.row, o]));
    let compared = 0;
    let agreed = 0;
    let within = 0;
    const confusion: Record<string, Record<string, number>> = {};
    const differ: { row: number; id: string; primary: unknown; shadow: unknown }[] = [];
    for (const a of one) {
      const b = byRow.get(a.row)!;
      compared++;
      const ca = argmax(a.outputs.output);
      const cb = argmax(b.outputs.output);
      if (ca === cb) agreed++;
      const close = a.outputs.output.every((v, k) => Math.abs(v - b.outputs.output[k]!) <= 1e-3 * Math.max(1, Math.abs(v)));
      if (close) within++;
      else differ.push({ row: a.row, id: a.id, primary: a.outputs, shadow: b.outputs });
      (confusion[ca] ??= {})[cb] = (confusion[ca]![cb] ?? 0) + 1;
    }
    expect(compared).toBe(N - N / 50);
    expect(agreed).toBeGreaterThan(0); // two random nets: some rows agree, some do not
    expect(agreed).toBeLessThan(compared);

    const res = await fetch(`${p.url}/v1/batches/${shadowId}/comparison`);
    expect(res.status).toBe(200);
    const report = (await res.json()) as Record<string, unknown>;
    expect(report).toMatchObject({
      batch: shadowId,
      primary: { versions: [1], completed: compared, failed: N / 50 },
      shadow: { version: 2, completed: compared, failed: N / 50 },
      compared,
      agreed,
      withinTolerance: within,
      differ: differ.length,
      onlyPrimary: 0,
      onlyShadow: 0,
      confusion,
    });
    expect(report.agreement).toBeCloseTo(agreed / compared, 12);
    expect((report.primary as { ms: number }).ms).toBeGreaterThanOrEqual(0);
    const diff = await fetch(`${p.url}/v1/batches/${shadowId}/comparison/diff`);
    expect(diff.status).toBe(200);
    expect(lines(await diff.text())).toEqual(differ);

    // A batch without a shadow version has no comparison.
    expect((await fetch(`${p.url}/v1/batches/${oneId}/comparison`)).status).toBe(404);
  });
});

describe('a batch over a weighted alias', () => {
  it('is scored chunk by chunk by the versions of the split, every output row naming its version', async () => {
    const put = await fetch(`${p.url}/v1/models/pair/aliases/split`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        versions: [
          { version: 1, weight: 50 },
          { version: 2, weight: 50 },
        ],
      }),
    });
    expect(put.status).toBe(200);
    const chunkRows = 50;
    const id = await submit(`model=pair@split&chunkRows=${chunkRows}`);
    const [oneId, twoId] = [await submit('model=pair@1'), await submit('model=pair@2')];
    for (const b of [id, oneId, twoId]) await done(b);
    const direct = [await output(oneId), await output(twoId)].map((o) => new Map(o.map((l) => [l.row, l])));
    const out = await output(id);
    expect(out).toHaveLength(N - N / 50);
    const seen = new Set<number>();
    for (const o of out) {
      const chunk = Math.floor(o.row / chunkRows);
      const want = pickWeighted([50, 50], `${id}:${chunk}`, 'pair') + 1;
      if (o.model_version !== want) throw new Error(`row ${o.row}: version ${o.model_version}, the route names ${want}`);
      const { model_version: _v, ...rest } = o;
      expect(rest).toEqual(direct[want - 1]!.get(o.row));
      seen.add(want);
    }
    expect(seen).toEqual(new Set([1, 2])); // 12 chunks at 50/50: P(one version only) = 2^-11

    const csv = (await (await fetch(`${p.url}/v1/batches/${id}/output?format=csv`)).text()).trim().split('\n');
    expect(csv[0]).toBe('row,id,model_version,output_0,output_1,output_2');
    expect(csv.slice(1).map((l) => Number(l.split(',')[2]))).toEqual(out.map((o) => o.model_version));

    const pq = Buffer.from(await (await fetch(`${p.url}/v1/batches/${id}/output?format=parquet`)).arrayBuffer());
    const objs = (await parquetReadObjects({ file: pq.buffer.slice(pq.byteOffset, pq.byteOffset + pq.length) as ArrayBuffer })) as { model_version: number }[];
    expect(objs.map((o) => o.model_version)).toEqual(out.map((o) => o.model_version));

    // Parts written by the workers in CSV (outputFormat) carry the column too, routed the same way.
    const partsId = await submit(`model=pair@split&chunkRows=${chunkRows}&outputFormat=csv`);
    await done(partsId);
    const parts = (await (await fetch(`${p.url}/v1/batches/${partsId}/output?format=csv`)).text()).trim().split('\n');
    expect(parts[0]).toBe('row,id,model_version,output_0,output_1,output_2');
    for (const l of parts.slice(1)) {
      const [row, , version] = l.split(',').map(Number);
      expect(version).toBe(pickWeighted([50, 50], `${partsId}:${Math.floor(row! / chunkRows)}`, 'pair') + 1);
    }
    expect(parts).toHaveLength(N - N / 50 + 1);
  });
});

// A batch by reference of a prefix of image files in an S3-protocol bucket (s3rver), for a CNN with
// declared image processing: each object is one row whose id is its path under the prefix, equal to
// the same files decoded and preprocessed here and run in onnxruntime directly (within 1e-4); a
// corrupt file is one error row naming it; a prefix for a model without processing stays tabular;
// a prefix of .parquet objects with a binary column of images is read row group by row group.
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { S3Store } from '../../core/storage/s3-store.ts';
import { convNet, directRun } from '../fixtures/models.ts';
import { draw, reference, type Drawing, CLASSIFIER_PROCESSING, CLASSIFIER_REF, GREEN_RECT, RED_CIRCLE } from '../fixtures/images.ts';
import { LAKE_BUCKET as BUCKET, startLake, type Lake } from '../helpers/lake.ts';
import { postJson, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const model = convNet(11);
const REF = CLASSIFIER_REF;
const PROCESSING = CLASSIFIER_PROCESSING;
const CORNER: Drawing = { width: 33, height: 21, background: [200, 200, 200], rect: [0, 0, 12, 8, '#000000'] };

let world: Lake | undefined;
let p: TestPlatform;
let lake: S3Store;
beforeAll(async () => {
  world = await startLake({ roots: [`s3://${BUCKET}/acme/`], workers: 1 });
  ({ p, lake } = world);
  expect((await uploadModel(p.url, 'cnn', model)).status).toBe(201);
  const put = await fetch(`${p.url}/v1/models/cnn/versions/1/processing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(PROCESSING),
  });
  expect(put.status).toBe(200);
}, 120_000);
afterAll(async () => {
  await world?.stop();
});

interface Manifest {
  rows: number;
  errors: number;
  parts: { uri: string; errorsUri: string }[];
}
const lines = async (uri: string) =>
  (await lake.get(uri.replace(`s3://${BUCKET}/`, '')))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { row: number; id: string; outputs?: { logits: number[] }; error?: { message: string } });

it('a prefix of JPEG, PNG and WebP files: one row per file named by its path under the prefix, equal to the direct run; a corrupt file is one error row', async () => {
  const good: [string, Buffer][] = [
    ['a-red.jpg', await draw(RED_CIRCLE, 'jpeg')],
    ['b-green.png', await draw(GREEN_RECT, 'png')],
    ['d-corner.webp', await draw(CORNER, 'webp')],
    ['sub/e-red.png', await draw(RED_CIRCLE, 'png')],
  ];
  for (const [name, data] of good) await lake.put(`acme/pics/${name}`, data);
  await lake.put('acme/pics/c-broken.jpg', Buffer.from('not a picture'));
  const res = await postJson(`${p.url}/v1/batches`, {
    model: 'cnn',
    input: { uri: `s3://${BUCKET}/acme/pics/` },
    output: { uri: `s3://${BUCKET}/acme/out-pics/` },
    chunkBytes: 1024, // several chunks of files
  });
  expect(res.status).toBe(202);
  const accepted = (await res.json()) as { id: string; chunks: { total: number } };
  expect(accepted.chunks.total).toBeGreaterThan(1);
  const done = await until(
    async () => {
      const v = (await (await fetch(`${p.url}/v1/batches/${accepted.id}`)).json()) as { status: string };
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${accepted.id} to end`,
    120_000,
  );
  expect(done).toMatchObject({ status: 'completed', requestCounts: { total: 5, completed: 4, failed: 1 } });
  const manifest = JSON.parse((await lake.get('acme/out-pics/_manifest.json')).toString('utf8')) as Manifest;
  expect(manifest).toMatchObject({ rows: 5, errors: 1 });
  const out = (await Promise.all(manifest.parts.map((q) => lines(q.uri)))).flat().sort((a, b) => a.id.localeCompare(b.id));
  const errors = (await Promise.all(manifest.parts.map((q) => lines(q.errorsUri)))).flat();
  expect(out.map((o) => o.id)).toEqual(good.map((g) => g[0]));
  const per = 3 * REF.crop * REF.crop;
  const x = new Float32Array(good.length * per);
  for (const [i, [, f]] of good.entries()) x.set(await reference(f, REF), i * per);
  const want = (await directRun(model, { image: { data: x, dims: [good.length, 3, REF.crop, REF.crop] } })).logits!;
  out.forEach((o, i) => o.outputs!.logits.forEach((v, j) => expect(Math.abs(v - want[i * 10 + j]!)).toBeLessThan(1e-4)));
  expect(errors.map((e) => e.id)).toEqual(['c-broken.jpg']);
  expect(errors[0]!.error!.message).toMatch(/file "c-broken.jpg".*does not decode/);
}, 180_000);

it('input.format "files" is refused for a model that takes tensors', async () => {
  expect((await uploadModel(p.url, 'plain', model)).status).toBe(201);
  const res = await postJson(`${p.url}/v1/batches`, {
    model: 'plain',
    input: { uri: `s3://${BUCKET}/acme/pics/`, format: 'files' },
    output: { uri: `s3://${BUCKET}/acme/out-x/` },
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/declared processing/);
}, 60_000);

it('a JSONL of {"id", "image": {"uri"}} rows reads the files under the tenant\'s roots; a URI outside them or missing is one error row', async () => {
  const files = [await draw(GREEN_RECT, 'jpeg'), await draw(CORNER, 'png')];
  await lake.put('acme/by-uri/one.jpg', files[0]!);
  await lake.put('acme/by-uri/two.png', files[1]!);
  const rows = [
    { id: 'one', image: { uri: `s3://${BUCKET}/acme/by-uri/one.jpg` } },
    { id: 'outside', image: { uri: `s3://${BUCKET}/other/x.jpg` } },
    { id: 'two', image: { uri: `s3://${BUCKET}/acme/by-uri/two.png` } },
    { id: 'missing', image: { uri: `s3://${BUCKET}/acme/by-uri/none.png` } },
  ];
  const res = await fetch(`${p.url}/v1/batches?model=cnn`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-ndjson' },
    body: rows.map((r) => JSON.stringify(r)).join('\n') + '\n',
  });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const done = await until(
    async () => {
      const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string };
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    120_000,
  );
  expect(done.status).toBe('completed');
  const read = async (kind: string) =>
    (await (await fetch(`${p.url}/v1/batches/${id}/${kind}`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; outputs?: { logits: number[] }; error?: { message: string } });
  const out = await read('output');
  expect(out.map((o) => o.id)).toEqual(['one', 'two']);
  const per = 3 * REF.crop * REF.crop;
  const x = new Float32Array(2 * per);
  for (const [i, f] of files.entries()) x.set(await reference(f, REF), i * per);
  const want = (await directRun(model, { image: { data: x, dims: [2, 3, REF.crop, REF.crop] } })).logits!;
  out.forEach((o, i) => o.outputs!.logits.forEach((v, j) => expect(Math.abs(v - want[i * 10 + j]!)).toBeLessThan(1e-4)));
  const errors = await read('errors');
  expect(errors.map((e) => e.id)).toEqual(['outside', 'missing']);
  expect(errors[0]!.error!.message).toMatch(/not under the storage roots/);
  expect(errors[1]!.error!.message).toMatch(/does not exist/);
}, 180_000);

it('a prefix of Parquet files with a binary column of images: a row group a chunk, ids kept, equal to the direct run, written as Parquet parts', async () => {
  const good = [await draw(RED_CIRCLE, 'jpeg'), await draw(CORNER, 'png'), await draw(GREEN_RECT, 'png')];
  const file = (ids: string[], values: Uint8Array[]) =>
    Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: 'id', data: ids, type: 'STRING' },
          { name: 'image', data: values, type: 'BYTE_ARRAY' },
        ],
        rowGroupSize: 1,
      }),
    );
  await lake.put('acme/pq/a.parquet', file(['r', 'bad'], [new Uint8Array(good[0]!), new Uint8Array(Buffer.from('not a picture'))]));
  await lake.put('acme/pq/b.parquet', file(['c', 'g'], [new Uint8Array(good[1]!), new Uint8Array(good[2]!)]));
  const res = await postJson(`${p.url}/v1/batches`, {
    model: 'cnn',
    input: { uri: `s3://${BUCKET}/acme/pq/` },
    output: { uri: `s3://${BUCKET}/acme/out-pq/`, format: 'parquet' },
  });
  expect(res.status).toBe(202);
  const accepted = (await res.json()) as { id: string; chunks: { total: number } };
  expect(accepted.chunks.total).toBe(4);
  const done = await until(
    async () => {
      const v = (await (await fetch(`${p.url}/v1/batches/${accepted.id}`)).json()) as { status: string };
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${accepted.id} to end`,
    120_000,
  );
  expect(done).toMatchObject({ status: 'completed', requestCounts: { total: 4, completed: 3, failed: 1 } });
  const manifest = JSON.parse((await lake.get('acme/out-pq/_manifest.json')).toString('utf8')) as Manifest;
  const parts = await Promise.all(
    manifest.parts.map(async (q) => {
      const b = await lake.get(q.uri.replace(`s3://${BUCKET}/`, ''));
      return (await parquetReadObjects({ file: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer })) as {
        id: string;
        logits: number[];
      }[];
    }),
  );
  const out = parts.flat();
  expect(out.map((o) => o.id)).toEqual(['r', 'c', 'g']);
  const per = 3 * REF.crop * REF.crop;
  const x = new Float32Array(good.length * per);
  for (const [i, f] of good.entries()) x.set(await reference(f, REF), i * per);
  const want = (await directRun(model, { image: { data: x, dims: [good.length, 3, REF.crop, REF.crop] } })).logits!;
  out.forEach((o, i) => o.logits.forEach((v, j) => expect(Math.abs(v - want[i * 10 + j]!)).toBeLessThan(1e-4)));
  const errors = (await Promise.all(manifest.parts.map((q) => lines(q.errorsUri)))).flat();
  expect(errors.map((e) => e.id)).toEqual(['bad']);
  expect(errors[0]!.error!.message).toMatch(/file "bad".*does not decode/);
}, 180_000);

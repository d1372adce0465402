// Parquet files of images as batches (#31): a binary column named as the model's file input (or
// given by fileColumn) and an optional id column, written by arrow-rs (parquet-wasm: dictionary
// pages, snappy, row groups of 2) and by hyparquet-writer. Each value is one file: the outputs equal
// the same files decoded and preprocessed here and run in onnxruntime directly (within 1e-4); a
// corrupt value is one error row naming its id, an over-large image one refused before decoding;
// without an id column the rows keep their index. The batch's output format applies to file batches
// and pipelines: CSV and Parquet parts (written by the workers, or converted on download) hold the
// JSONL output's values, the post-processing's label a column, top-k a column per rank in CSV and
// a list in Parquet.
import { randomBytes } from 'node:crypto';
import { Binary, Table, Utf8, tableToIPC, vectorFromArray } from 'apache-arrow';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import * as pw from 'parquet-wasm/node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { convNet, directRun, mlp } from '../fixtures/models.ts';
import { claimedSizePng, draw, reference, CLASSIFIER_PROCESSING, CLASSIFIER_REF, GREEN_RECT, RED_CIRCLE, type Drawing } from '../fixtures/images.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const model = convNet(11);
const REF = CLASSIFIER_REF;
const LABELS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const PROCESSING = { ...CLASSIFIER_PROCESSING, post: { output: 'logits', softmax: true, argmax: true, topK: 3 }, labels: LABELS };
/** A row group of files is one chunk, at most this many bytes. */
const CHUNK_BYTES = 200_000;
const BLUE_DOT: Drawing = { width: 50, height: 31, background: [10, 200, 90], circle: [30, 15, 9, '#2020ff'] };

let p: TestPlatform;
let files: { id: string; file: Buffer }[];
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_BATCH_CHUNK_BYTES: String(CHUNK_BYTES) } });
  expect((await uploadModel(p.url, 'cnn', model)).status).toBe(201);
  expect((await uploadModel(p.url, 'plain', mlp({ sizes: [4, 3], seed: 1 }))).status).toBe(201);
  const put = await fetch(`${p.url}/v1/models/cnn/versions/1/processing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(PROCESSING),
  });
  expect(put.status).toBe(200);
  const pipe = await postJson(`${p.url}/v1/models/pipe/pipelines`, {
    inputs: [{ name: 'photo', datatype: 'BYTES', shape: [-1] }],
    steps: [{ name: 'classify', model: 'cnn', version: 1, inputs: { image: 'photo' } }],
    outputs: { logits: 'classify.logits', label: 'classify.label', top: 'classify.top_k_labels' },
  });
  expect(pipe.status).toBe(201);
  files = [
    { id: 'red.jpg', file: await draw(RED_CIRCLE, 'jpeg') },
    { id: 'green.png', file: await draw(GREEN_RECT, 'png') },
    { id: 'blue.webp', file: await draw(BLUE_DOT, 'webp') },
    { id: 'red.png', file: await draw(RED_CIRCLE, 'png') },
    { id: 'green.jpg', file: await draw(GREEN_RECT, 'jpeg') },
  ];
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

async function expected(list: Buffer[]): Promise<Float32Array> {
  const per = 3 * REF.crop * REF.crop;
  const x = new Float32Array(list.length * per);
  for (const [i, f] of list.entries()) x.set(await reference(f, REF), i * per);
  return (await directRun(model, { image: { data: x, dims: [list.length, 3, REF.crop, REF.crop] } })).logits!;
}

/** arrow-rs: id (Utf8) and `column` (Binary), dictionary pages, snappy, `groupRows` rows per row group. */
function arrowFile(rows: { id: string; file: Buffer | null }[], column = 'image', groupRows = 2): Uint8Array {
  const table = new Table({
    id: vectorFromArray(
      rows.map((r) => r.id),
      new Utf8(),
    ),
    [column]: vectorFromArray(
      rows.map((r) => (r.file ? new Uint8Array(r.file) : null)),
      new Binary(),
    ),
  });
  const props = new pw.WriterPropertiesBuilder().setCompression(pw.Compression.SNAPPY).setMaxRowGroupSize(groupRows).build();
  return pw.writeParquet(pw.Table.fromIPCStream(tableToIPC(table, 'stream')), props);
}

type Line = { row: number; id?: string; outputs?: Record<string, (number | string)[]>; error?: { message: string } };

async function submit(body: Uint8Array | ArrayBuffer, query: string): Promise<Response> {
  return fetch(`${p.url}/v1/batches?${query}`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'application/vnd.apache.parquet' } });
}

async function runBatch(body: Uint8Array | ArrayBuffer, query: string, status = 'completed') {
  const res = await submit(body, query);
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const done = await until(
    async () => {
      const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string; error?: string };
      return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
    },
    `batch ${id} to end`,
    120_000,
  );
  expect(done.status).toBe(status);
  const read = async (kind: string) =>
    (await (await fetch(`${p.url}/v1/batches/${id}/${kind}`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);
  return { id, out: await read('output'), errors: await read('errors'), done };
}

function near(out: Line[], want: Float32Array): void {
  out.forEach((o, i) => o.outputs!.logits!.forEach((v, j) => expect(Math.abs((v as number) - want[i * 10 + j]!)).toBeLessThan(1e-4)));
}

it('a Parquet binary column is one file per row, kept by id, equal to the direct run; a corrupt value and an over-large image are one error row each', async () => {
  const rows = [
    files[0]!,
    { id: 'broken.jpg', file: Buffer.from('not a picture at all') },
    files[1]!,
    files[2]!,
    { id: 'huge.png', file: await claimedSizePng(20_000, 20_000) },
    { id: 'missing', file: null },
    files[3]!,
  ];
  const { out, errors } = await runBatch(arrowFile(rows), 'model=cnn');
  const good = [files[0]!, files[1]!, files[2]!, files[3]!];
  expect(out.map((o) => o.id)).toEqual(good.map((g) => g.id));
  expect(out.map((o) => o.row)).toEqual([0, 2, 3, 6]);
  near(out, await expected(good.map((g) => g.file)));
  // The post-processing's outputs come along.
  for (const o of out) {
    const best = o.outputs!.probabilities!.indexOf(Math.max(...(o.outputs!.probabilities as number[])));
    expect(o.outputs!.label).toEqual([LABELS[best]]);
    expect(o.outputs!.top_k_labels![0]).toBe(LABELS[best]);
  }
  expect(errors.map((e) => [e.row, e.id])).toEqual([
    [1, 'broken.jpg'],
    [4, 'huge.png'],
    [5, 'missing'],
  ]);
  expect(errors[0]!.error!.message).toMatch(/file "broken.jpg".*does not decode/);
  expect(errors[1]!.error!.message).toMatch(/file "huge.png".*20000x20000.*MODELQ_MAX_IMAGE_PIXELS.*refused before decoding/);
  expect(errors[2]!.error!.message).toMatch(/file "missing".*column "image" has no value/);
}, 180_000);

it('fileColumn names the column of files; without an id column the rows keep their index', async () => {
  const file = parquetWriteBuffer({
    columnData: [
      { name: 'note', data: files.map((_, i) => `n${i}`), type: 'STRING' },
      { name: 'photo', data: files.map((f) => new Uint8Array(f.file)), type: 'BYTE_ARRAY' },
    ],
    rowGroupSize: 3,
  });
  const { out, errors } = await runBatch(file, 'model=cnn&fileColumn=photo');
  expect(errors).toEqual([]);
  expect(out.map((o) => o.row)).toEqual([0, 1, 2, 3, 4]);
  expect(out.every((o) => o.id === undefined)).toBe(true);
  near(out, await expected(files.map((f) => f.file)));
}, 180_000);

it('refuses, naming the fix: a file without the column, a number column, a row group over the chunk bytes, fileColumn on a model of tensors or on JSONL', async () => {
  const noColumn = await submit(arrowFile(files.slice(0, 2), 'picture'), 'model=cnn');
  expect(noColumn.status).toBe(400);
  expect(((await noColumn.json()) as { error: { message: string } }).error.message).toMatch(/no column "image"/);
  const wrong = await submit(arrowFile(files.slice(0, 2), 'picture'), 'model=cnn&fileColumn=photo');
  expect(wrong.status).toBe(400);
  expect(((await wrong.json()) as { error: { message: string } }).error.message).toMatch(/no column "photo"/);
  // A number column is no file column.
  const numbers = parquetWriteBuffer({ columnData: [{ name: 'image', data: [1, 2], type: 'DOUBLE' }] });
  const n = await submit(numbers, 'model=cnn');
  expect(n.status).toBe(400);
  expect(((await n.json()) as { error: { message: string } }).error.message).toMatch(/column "image" holds DOUBLE/);
  const big = await submit(arrowFile([files[0]!, { id: 'noise', file: randomBytes(CHUNK_BYTES + 1000) }], 'image', 10), 'model=cnn');
  expect(big.status).toBe(400);
  expect(((await big.json()) as { error: { message: string } }).error.message).toMatch(
    /a row group of \d+ bytes .*MODELQ_BATCH_CHUNK_BYTES.*smaller row groups/,
  );
  const tensors = await submit(parquetWriteBuffer({ columnData: [{ name: 'input', data: [1, 2], type: 'DOUBLE' }] }), 'model=plain&fileColumn=photo');
  expect(tensors.status).toBe(400);
  expect(((await tensors.json()) as { error: { message: string } }).error.message).toMatch(/fileColumn/);
  const jsonl = await fetch(`${p.url}/v1/batches?model=cnn&fileColumn=photo`, {
    method: 'POST',
    body: `{"id":"a","image":{"b64":"${files[0]!.file.toString('base64')}"}}\n`,
  });
  expect(jsonl.status).toBe(400);
  expect(((await jsonl.json()) as { error: { message: string } }).error.message).toMatch(/fileColumn/);
}, 60_000);

it('a text column where files are wanted makes error rows naming the column (the bytes are not guessed from text): every row failed, the batch fails saying why', async () => {
  const file = parquetWriteBuffer({
    columnData: [
      { name: 'id', data: ['a', 'b'], type: 'STRING' },
      { name: 'image', data: ['not', 'bytes'], type: 'STRING' },
    ],
  });
  const { out, errors, done } = await runBatch(file, 'model=cnn', 'failed');
  expect(JSON.stringify(done)).toMatch(/every row failed.*column \\"image\\" holds text/);
  expect(out).toEqual([]);
  expect(errors.map((e) => e.id)).toEqual(['a', 'b']);
  expect(errors[0]!.error!.message).toMatch(/column "image" holds text .*binary column/);
}, 60_000);

/** A downloaded output in `format`, as rows of column -> value. */
async function download(id: string, format: 'csv' | 'parquet'): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${p.url}/v1/batches/${id}/output?format=${format}`);
  expect(res.status).toBe(200);
  if (format === 'parquet') {
    const buf = await res.arrayBuffer();
    return (await parquetReadObjects({ file: buf })) as Record<string, unknown>[];
  }
  const [head, ...lines] = (await res.text()).trim().split('\n');
  const cols = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i]!, v])));
}

/** CSV and Parquet rows hold the JSONL lines' values: `row`, `id`, each output's scalar or per-position columns (CSV), lists (Parquet). */
function sameAsJsonl(lines: Line[], rows: Record<string, unknown>[], format: 'csv' | 'parquet', classed: Record<string, readonly string[]>): void {
  expect(rows.length).toBe(lines.length);
  lines.forEach((l, i) => {
    const r = rows[i]!;
    expect(Number(r.row)).toBe(l.row);
    expect(String(r.id ?? '')).toBe(l.id ?? '');
    for (const [name, values] of Object.entries(l.outputs!)) {
      const cells =
        format === 'parquet'
          ? values.length === 1 && !Array.isArray(r[name])
            ? [r[name]]
            : (r[name] as unknown[])
          : values.length === 1 && r[name] !== undefined
            ? [r[name]]
            : values.map((_, k) => r[`${name}_${classed[name]?.[k] ?? k}`]);
      expect(cells.length).toBe(values.length);
      values.forEach((v, k) => {
        if (typeof v === 'number') expect(Math.abs(Number(cells[k]) - v)).toBeLessThan(1e-5);
        else expect(cells[k]).toBe(v);
      });
    }
  });
}

const CLASSED = { logits: LABELS, probabilities: LABELS };

it.each(['csv', 'parquet'] as const)(
  'outputFormat=%s: the parts written by the workers, and the JSONL converted on download, hold the JSONL output values (model and pipeline)',
  async (format) => {
    const body = arrowFile([...files, { id: 'broken.jpg', file: Buffer.from('nope') }]);
    const plain = await runBatch(body, 'model=cnn');
    expect(plain.out.length).toBe(files.length);
    const written = await runBatch(body, `model=cnn&outputFormat=${format}`);
    expect(written.out.map((o) => o.id)).toEqual(plain.out.map((o) => o.id));
    expect(written.errors.map((e) => e.id)).toEqual(['broken.jpg']);
    const csvColumns = format === 'csv' ? Object.keys((await download(written.id, 'csv'))[0]!) : [];
    if (format === 'csv') {
      // Per-class columns are named by the labels; top-k by rank; the label a column of its own.
      expect(csvColumns).toEqual(
        expect.arrayContaining(['row', 'id', 'logits_zero', 'probabilities_nine', 'label', 'top_k_labels_0', 'top_k_labels_2', 'top_k_scores_1']),
      );
    }
    sameAsJsonl(plain.out, await download(written.id, format), format, CLASSED);
    sameAsJsonl(plain.out, await download(plain.id, format), format, CLASSED);

    // A pipeline of files over the same Parquet column, named by fileColumn.
    const pipePlain = await runBatch(body, 'model=pipe&fileColumn=image');
    expect(pipePlain.out.map((o) => o.id)).toEqual(files.map((f) => f.id));
    near(pipePlain.out, await expected(files.map((f) => f.file)));
    expect(pipePlain.errors.map((e) => e.id)).toEqual(['broken.jpg']);
    const pipeWritten = await runBatch(body, `model=pipe&fileColumn=image&outputFormat=${format}`);
    sameAsJsonl(pipePlain.out, await download(pipeWritten.id, format), format, {});
    sameAsJsonl(pipePlain.out, await download(pipePlain.id, format), format, {});
  },
  240_000,
);

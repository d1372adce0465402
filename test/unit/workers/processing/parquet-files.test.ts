// A Parquet batch's row group of files read as file-batch rows (workers/processing/parquet-files.ts):
// binary values kept as bytes (base64 in the row), a value over the file limit its row's error
// counted from its own bytes, an INT64 id kept as a number, a null its row's error; a value whose
// length prefix claims more bytes than the page holds fails the chunk as a bad file, without
// allocating what it claims.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterAll, expect, it } from 'vitest';
import type { BatchSpec, ScoreJob } from '../../../../core/jobs/batch.ts';
import { footerPlan } from '../../../../core/rows/parquet-footer.ts';
import { readFooter } from '../../../../core/rows/parquet.ts';
import { FsStore } from '../../../../core/storage/fs-store.ts';
import { parquetFileRows } from '../../../../workers/processing/parquet-files.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parquet-files-'));
const store = new FsStore(dir);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

async function chunkOf(file: Uint8Array, key: string): Promise<{ spec: BatchSpec; chunk: ScoreJob }> {
  await store.put(
    key,
    (async function* () {
      yield Buffer.from(file);
    })(),
  );
  const footer = await readFooter(async (s, e) => file.subarray(s, e), file.length);
  const { plan, chunks } = footerPlan({ footer, fileBytes: file.length, inputs: [{ name: 'image', datatype: 'BYTES', shape: [-1] }], groupRows: 1000 });
  const spec = {
    id: 'b',
    model: { name: 'm', version: 1, sha256: 'x', inputs: [], outputs: [], processing: { inputs: [{ type: 'image', input: 'image' }] } },
    format: 'parquet',
    inputKey: key,
    bytes: file.length,
    parquet: plan,
  } as unknown as BatchSpec;
  const c = chunks[0]!;
  return { spec, chunk: { batchId: 'b', index: 0, start: c.start, end: c.end, firstRow: c.firstRow, rows: c.rows } };
}

it('gives each value as a row of its file in base64, ids kept; a value over the limit and a null are their rows’ errors', async () => {
  const values = [bytes(10, 1), bytes(3000, 2), null, bytes(700, 3)];
  const file = new Uint8Array(
    parquetWriteBuffer({
      columnData: [
        { name: 'id', data: [11n, 12n, 13n, 14n], type: 'INT64' },
        { name: 'image', data: values, type: 'BYTE_ARRAY' },
      ],
    }),
  );
  const { spec, chunk } = await chunkOf(file, 'ok.parquet');
  const rows = (await parquetFileRows(spec, chunk, { store }, 1000)).map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(rows.map((r) => r.id)).toEqual([11, 12, 13, 14]);
  expect(rows[0]!.image).toEqual({ b64: Buffer.from(values[0]!).toString('base64') });
  expect(rows[3]!.image).toEqual({ b64: Buffer.from(values[3]!).toString('base64') });
  expect(rows[1]!.$error).toMatch(/3000 bytes, over 1000 \(MODELQ_MAX_ROW_BYTES\)/);
  expect(rows[1]!.image).toBeUndefined();
  expect(rows[2]!.$error).toMatch(/column "image" has no value/);
});

it('a value claiming more bytes than its page holds fails the chunk as a bad file', async () => {
  const value = bytes(64, 9);
  const file = new Uint8Array(
    parquetWriteBuffer({ columnData: [{ name: 'image', data: [value, value], type: 'BYTE_ARRAY', encoding: 'PLAIN' }], codec: 'UNCOMPRESSED' }),
  );
  // The first value's 4-byte length, just before its bytes.
  const at = Buffer.from(file).indexOf(Buffer.concat([Buffer.from([64, 0, 0, 0]), Buffer.from(value)]));
  expect(at).toBeGreaterThan(0);
  const bad = Uint8Array.from(file);
  new DataView(bad.buffer).setUint32(at, 0x7fff_0000, true);
  const { spec, chunk } = await chunkOf(bad, 'bad.parquet');
  await expect(parquetFileRows(spec, chunk, { store }, 1 << 20)).rejects.toMatchObject({ code: 'bad_request' });
});

// Shared by the batch benchmarks: a seeded JSONL input file, and a streamed upload of it.
import fs from 'node:fs';
import http from 'node:http';
import { fileWriter, ParquetWriter } from 'hyparquet-writer';

/** `rows` JSONL rows of `features` seeded values in [-1, 1), written 4 MiB at a time. */
export function writeInput(file: string, rows: number, features: number) {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const fd = fs.openSync(file, 'w');
  let buf = '';
  for (let i = 0; i < rows; i++) {
    buf += `{"id":${i},"input":[${Array.from({ length: features }, () => rnd().toFixed(5)).join(',')}]}\n`;
    if (buf.length > 4 * 1024 * 1024) {
      fs.writeSync(fd, buf);
      buf = '';
    }
  }
  fs.writeSync(fd, buf);
  fs.closeSync(fd);
}

/** The same rows as writeInput, as Parquet: `id` (INT64) and `input` (list<float>), in row groups of `groupRows`. */
export async function writeParquetInput(file: string, rows: number, features: number, groupRows = 10_000): Promise<void> {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const writer = fileWriter(file);
  const pq = new ParquetWriter({
    writer,
    schema: [
      { name: 'root', num_children: 2 },
      { name: 'id', type: 'INT64', repetition_type: 'REQUIRED' },
      { name: 'input', repetition_type: 'REQUIRED', num_children: 1, converted_type: 'LIST' },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'FLOAT', repetition_type: 'REQUIRED' },
    ],
  });
  for (let s = 0; s < rows; s += groupRows) {
    const n = Math.min(groupRows, rows - s);
    const ids = Array.from({ length: n }, (_, i) => BigInt(s + i));
    // toFixed(5) as in the JSONL file, so both formats carry the same numbers.
    const input = Array.from({ length: n }, () => Array.from({ length: features }, () => Number(rnd().toFixed(5))));
    await pq.write({
      columnData: [
        { name: 'id', data: ids },
        { name: 'input', data: input },
      ],
      rowGroupSize: n,
    });
  }
  await pq.finish();
}

/** Streams a file as the request body with node:http, as curl --data-binary @file would. */
export function postFile(url: string, file: string, contentType = 'application/x-ndjson'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': contentType } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    fs.createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(req);
  });
}

// Shared by the batch benchmarks: a seeded JSONL input file, and a streamed upload of it.
import fs from 'node:fs';
import http from 'node:http';

/** `rows` JSONL rows of `features` seeded values in [-1, 1), written 4 MiB at a time. */
export function writeInput(file: string, rows: number, features: number) {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const fd = fs.openSync(file, 'w');
  let buf = '';
  for (let i = 0; i < rows; i++) {
    buf += `{"id":${i},"input":[${Array.from({ length: features }, () => rnd().toFixed(5)).join(',')}]}\n`;
    if (buf.length > 4 * 1024 * 1024) { fs.writeSync(fd, buf); buf = ''; }
  }
  fs.writeSync(fd, buf);
  fs.closeSync(fd);
}

/** Streams a file as the request body with node:http, as curl --data-binary @file would. */
export function postFile(url: string, file: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    fs.createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(req);
  });
}

// Downloads and uploads that the client abandons midway release what they hold: no file descriptor
// stays open on an artifact (OpenAI file content, a model's ONNX) and no temp file is left by an
// OpenAI file upload. Descriptors are read from /proc/self/fd: the producer runs in this process.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelArtifactKey } from '../../core/registry.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const ABORTS = 12;
let p: TestPlatform;
let dataDir: string;

beforeAll(async () => {
  p = await startPlatform();
  dataDir = path.resolve(p.cfg.MODELQ_DATA_DIR);
});
afterAll(async () => {
  await p?.stop();
});

const fds = () => fs.readdirSync('/proc/self/fd');
/** Descriptors this process holds on files of the artifact store. */
function openInStore(): string[] {
  const held: string[] = [];
  for (const fd of fds()) {
    try {
      const target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dataDir)) held.push(target);
    } catch {
      // closed between the listing and the read
    }
  }
  return held;
}
const tempFiles = (dir: string): string[] =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.tmp')) : [];

/** GETs `urlPath`, takes the first chunk of the body, then goes away. Resolves once the socket is gone. */
function abortAfterFirstChunk(urlPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${p.url}${urlPath}`, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${urlPath}: ${res.statusCode}`));
      res.once('data', () => req.destroy());
    });
    req.on('error', () => {}); // the destroy above
    req.on('close', () => resolve());
  });
}

async function abortedDownloads(urlPath: string): Promise<void> {
  const before = fds().length;
  for (let i = 0; i < ABORTS; i++) await abortAfterFirstChunk(urlPath);
  await until(() => openInStore().length === 0, `no descriptor left open on the store's files after ${ABORTS} aborted downloads of ${urlPath}`, 10_000);
  // One leaked descriptor per download would show here as well, whatever it points at.
  expect(fds().length - before).toBeLessThan(ABORTS);
}

describe('aborted transfers', () => {
  it('an aborted download of OpenAI file content leaves no descriptor open', async () => {
    // Bigger than what the sockets buffer, so the server is mid-file when the client leaves.
    const line = JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v2/models/m/infer', body: { pad: 'y'.repeat(1000) } }) + '\n';
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([line.repeat(24_000)]), 'big.jsonl');
    const res = await fetch(`${p.url}/openai/v1/files`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    const { id } = (await res.json()) as { id: string };
    await abortedDownloads(`/openai/v1/files/${id}/content`);
    // And the file still downloads whole afterwards.
    expect((await (await fetch(`${p.url}/openai/v1/files/${id}/content`)).arrayBuffer()).byteLength).toBe(line.length * 24_000);
  });

  it("an aborted download of a model's ONNX leaves no descriptor open", async () => {
    const bytes = Buffer.from(buildMlp({ sizes: [1024, 4096, 1024], seed: 3 })); // ~32 MB of weights
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await p.deps.store.put(modelArtifactKey(sha256), bytes);
    await p.deps.registry.createVersion('big', { sha256, bytes: bytes.length, inputs: [], outputs: [] });
    await abortedDownloads('/v1/models/big/versions/1/onnx');
  });

  it('an aborted OpenAI file upload leaves no temp file and no descriptor', async () => {
    const before = fds().length;
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve) => {
        const boundary = 'b0undary';
        const req = http.request(`${p.url}/openai/v1/files`, {
          method: 'POST',
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(64 * 1024 * 1024) },
        });
        req.on('error', () => {});
        req.on('close', () => resolve());
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n`);
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n`);
        req.write('{"custom_id":"a"}\n'.repeat(50_000));
        // Gone once the store is writing the file (its temp file exists), with most of the body unsent.
        void until(() => tempFiles(dataDir).length > 0, 'the upload to reach the store').then(() => req.destroy());
      });
    }
    await until(() => tempFiles(dataDir).length === 0 && openInStore().length === 0, 'no temp file or descriptor left by the aborted uploads', 10_000);
    expect(fds().length - before).toBeLessThan(3);
  });
});

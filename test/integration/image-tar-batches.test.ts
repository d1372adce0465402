// Tar archives of image files as batches of a CNN with declared image processing: archives made by
// the system's tar (GNU format, a long path, a folder; plain and gzipped) give one row per file,
// named by its path, equal to the same files decoded and preprocessed here and run in onnxruntime
// directly (within 1e-4); a corrupt file is one error row naming it; a body that only looks like a
// tar (bad checksum) is a 400.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { convNet, directRun } from '../fixtures/models.ts';
import { draw, reference, CLASSIFIER_PROCESSING, CLASSIFIER_REF, GREEN_RECT, RED_CIRCLE } from '../fixtures/images.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const model = convNet(11);
const REF = CLASSIFIER_REF;
const PROCESSING = CLASSIFIER_PROCESSING;

let p: TestPlatform;
let dir: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tar-batches-'));
  p = await startPlatform({ workers: 1 });
  expect((await uploadModel(p.url, 'cnn', model)).status).toBe(201);
  const put = await fetch(`${p.url}/v1/models/cnn/versions/1/processing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(PROCESSING),
  });
  expect(put.status).toBe(200);
}, 120_000);
afterAll(async () => {
  await p?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function expected(files: Buffer[]): Promise<Float32Array> {
  const per = 3 * REF.crop * REF.crop;
  const x = new Float32Array(files.length * per);
  for (const [i, f] of files.entries()) x.set(await reference(f, REF), i * per);
  return (await directRun(model, { image: { data: x, dims: [files.length, 3, REF.crop, REF.crop] } })).logits!;
}

async function runBatch(body: Uint8Array, contentType: string) {
  const res = await fetch(`${p.url}/v1/batches?model=cnn&chunkRows=2`, {
    method: 'POST',
    body: new Uint8Array(body),
    headers: { 'content-type': contentType },
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
  return { out: await read('output'), errors: await read('errors') };
}

/** The files written under a fresh folder and archived there by the system's tar, in the order given. */
function tarOf(name: string, files: [string, Buffer][], gzip: boolean): Buffer {
  const root = path.join(dir, name);
  for (const [rel, data] of files) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), data);
  }
  const out = path.join(dir, `${name}.tar${gzip ? '.gz' : ''}`);
  execFileSync('tar', [gzip ? '-czf' : '-cf', out, '--format=gnu', '-C', root, ...files.map(([rel]) => rel)]);
  return fs.readFileSync(out);
}

const LONG = `${'deep/'.repeat(12)}a-file-name-longer-than-a-hundred-characters-in-all.png`;

it.each([false, true])(
  'a tar archive (gzipped: %s) is one row per file, named by its path, equal to the direct run; a corrupt file is one error row',
  async (gzip) => {
    const good: [string, Buffer][] = [
      ['red.jpg', await draw(RED_CIRCLE, 'jpeg')],
      ['pics/green.png', await draw(GREEN_RECT, 'png')],
      [LONG, await draw(RED_CIRCLE, 'png')],
    ];
    const body = tarOf(`a${gzip ? 'z' : ''}`, [good[0]!, ['broken.jpg', Buffer.from('not a picture')], good[1]!, good[2]!], gzip);
    const { out, errors } = await runBatch(body, gzip ? 'application/gzip' : 'application/x-tar');
    expect(out.map((o) => o.id)).toEqual(good.map((g) => g[0]));
    const want = await expected(good.map((g) => g[1]));
    out.forEach((o, i) => o.outputs!.logits.forEach((v, j) => expect(Math.abs(v - want[i * 10 + j]!)).toBeLessThan(1e-4)));
    expect(errors.map((e) => e.id)).toEqual(['broken.jpg']);
    expect(errors[0]!.error!.message).toMatch(/file "broken.jpg".*does not decode/);
  },
  180_000,
);

it('a body that looks like a tar but whose header checksum is wrong is a 400', async () => {
  const body = tarOf('bad', [['x.png', await draw(RED_CIRCLE, 'png')]], false);
  body[0] = body[0]! ^ 0x01; // the name changes, the checksum stays
  const res = await fetch(`${p.url}/v1/batches?model=cnn`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'application/x-tar' } });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/checksum/);
}, 60_000);

// Encryption at rest on a running platform: with a master key configured, the raw files of the
// filesystem store hold no plaintext of a model, a dataset row or a batch row; batches (chunks read
// by byte range) score as without encryption; `modelq rotate-key` rewraps every data key so the
// stored objects read with the new key alone, ranged reads of a batch input included.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncryptedStore, MasterKeys, SIDECAR_SUFFIX } from '../../core/storage/encrypted-store.ts';
import { FsStore } from '../../core/storage/index.ts';
import { buildMlp } from '../../workers/onnx/builder.ts';
import { directRun, rows } from '../fixtures/models.ts';
import { startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const k1 = randomBytes(32).toString('base64');
const k2 = randomBytes(32).toString('base64');
const F = 8;
const model = buildMlp({ sizes: [F, 16, 3], seed: 23 });

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1, env: { MODELQ_MASTER_KEY: k1 } });
});
afterAll(async () => {
  await p?.stop();
});

const files = (dir: string) =>
  fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));

describe('encryption at rest', () => {
  it('stores no plaintext, scores batches from encrypted chunk objects, reads ranges of them, and stays readable after rotate-key', async () => {
    expect((await uploadModel(p.url, 'enc', model)).status).toBe(201);
    const csv = `name,email,score\n${Array.from({ length: 200 }, (_, i) => `n${i},person-${i}@secret.example,${i}`).join('\n')}\n`;
    const ds = await fetch(`${p.url}/v1/datasets?format=csv&name=people`, { method: 'POST', body: csv, headers: { 'content-type': 'text/csv' } });
    expect(ds.status).toBe(201);

    const n = 3000;
    const x = rows(n, F, 6);
    const body = Array.from({ length: n }, (_, i) => JSON.stringify({ id: `row-${i}-marker`, input: Array.from(x.subarray(i * F, (i + 1) * F)) })).join('\n');
    expect(body.length).toBeGreaterThan(3 * 65536);
    const sub = await fetch(`${p.url}/v1/batches?model=enc&chunkRows=400`, { method: 'POST', body, headers: { 'content-type': 'application/x-ndjson' } });
    expect(sub.status).toBe(202);
    const { id } = (await sub.json()) as { id: string };
    const done = await until(
      async () => {
        const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string };
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      'the batch to end',
      120_000,
    );
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: n, completed: n, failed: 0 } });
    const out = (await (await fetch(`${p.url}/v1/batches/${id}/output`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { row: number; id: string; outputs: { output: number[] } });
    expect(out).toHaveLength(n);
    const expected = (await directRun(model, { input: { data: x, dims: [n, F] } })).output!;
    for (let i = 0; i < n; i += 97) {
      expect(out[i]!.id).toBe(`row-${i}-marker`);
      for (let j = 0; j < 3; j++) expect(out[i]!.outputs.output[j]).toBeCloseTo(expected[i * 3 + j]!, 5);
    }

    // No stored byte string of the model, the dataset or the batch in any raw file.
    const dir = p.cfg.MODELQ_DATA_DIR;
    const keys = files(dir);
    expect(keys.some((k) => k.endsWith(SIDECAR_SUFFIX))).toBe(true);
    const modelSlice = Buffer.from(model.subarray(model.length - 200, model.length - 150));
    for (const k of keys) {
      const raw = fs.readFileSync(path.join(dir, k));
      expect(raw.includes(modelSlice), k).toBe(false);
      expect(raw.includes('@secret.example'), k).toBe(false);
      expect(raw.includes('-marker'), k).toBe(false);
    }

    // Rotate to k2 (k1 kept to unwrap), then read everything with k2 alone.
    const env = { ...process.env, ...p.env, MODELQ_MASTER_KEY: `${k2},${k1}` };
    const r = spawnSync(process.execPath, ['cli/bin.mjs', 'rotate-key', '--json'], { cwd: ROOT, env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const rotated = JSON.parse(r.stdout) as { rewrapped: number; current: number };
    expect(rotated.rewrapped).toBe(keys.filter((k) => k.endsWith(SIDECAR_SUFFIX)).length);
    const s = new EncryptedStore(new FsStore(dir), MasterKeys.parse([k2], 'test'));
    const objects = await s.list('', 100_000);
    expect(objects.length).toBeGreaterThan(3);
    for (const o of objects) expect((await s.get(o.key)).length, o.key).toBe(o.bytes);
    const modelKey = objects.find((o) => o.key.startsWith('models/'))!.key;
    expect((await s.get(modelKey)).equals(Buffer.from(model))).toBe(true);
    expect((await s.get(objects.find((o) => o.key.startsWith('datasets/'))!.key)).toString()).toBe(csv);
    // The upload was stored as it arrived, one encrypted object per chunk: together, the body.
    const parts = objects.filter((o) => o.key.startsWith(`batches/${id}/input-`)).sort((a, b) => a.key.localeCompare(b.key));
    expect(parts.length, objects.map((o) => o.key).join(' ')).toBeGreaterThan(1);
    expect(Buffer.concat(await Promise.all(parts.map((o) => s.get(o.key)))).toString()).toBe(body);
    // A ranged read inside the first part, across the cipher's 64 KiB segments.
    expect(parts[0]!.bytes).toBeGreaterThan(65_536);
    const from = 30_000;
    const to = Math.min(parts[0]!.bytes, 70_000);
    expect((await buffer(await s.read(parts[0]!.key, { start: from, end: to }))).toString()).toBe(body.slice(from, to));
  });
});

// A worker killed with SIGKILL in the middle of a batch by reference, and replaced: the output
// prefix holds each part once (deterministic names, whole-object writes), the manifest lists them,
// and every input row is in them exactly once, in order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3Store } from '../../core/storage/s3-store.ts';
import { rows, SLOW_FEATURES, slowMlp } from '../fixtures/models.ts';
import { LAKE_BUCKET as BUCKET, startLake, type Lake } from '../helpers/lake.ts';
import { postJson, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import type { S3Server } from '../unit/core/storage/s3-server.ts';

const WORKER_ENV = { MODELQ_JOB_LOCK_MS: '2000', MODELQ_SCORE_CONCURRENCY: '1' };
let world: Lake | undefined;
let s3: S3Server;
let p: TestPlatform;
let lake: S3Store;

beforeAll(async () => {
  world = await startLake({ roots: [`s3://${BUCKET}/t/`], workers: 2, env: WORKER_ENV });
  ({ s3, p, lake } = world);
  expect((await uploadModel(p.url, 'slow', slowMlp())).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await world?.stop();
});

describe('chaos: a worker killed during a batch by reference', () => {
  it('leaves each output part once and every row once', async () => {
    const perFile = 1000;
    for (const f of [0, 1]) {
      const x = rows(perFile, SLOW_FEATURES, 80 + f);
      let body = '';
      for (let i = 0; i < perFile; i++)
        body += `${JSON.stringify({ id: `${f}-${i}`, input: Array.from(x.subarray(i * SLOW_FEATURES, (i + 1) * SLOW_FEATURES)) })}\n`;
      await lake.put(`t/in/${f}.jsonl`, body);
    }
    const res = await postJson(`${p.url}/v1/batches`, {
      model: 'slow',
      input: { uri: `s3://${BUCKET}/t/in/` },
      output: { uri: `s3://${BUCKET}/t/out/`, format: 'csv' },
      chunkBytes: 16 * 1024,
    });
    expect(res.status).toBe(202);
    const { id, chunks } = await res.json();
    expect(chunks.total).toBeGreaterThan(8);
    // Kill one worker once chunks are being scored (some done, not all).
    const view = async () => (await fetch(`${p.url}/v1/batches/${id}`)).json();
    await until(
      async () => {
        const v = await view();
        return v.chunks.done >= 1 || ['completed', 'failed'].includes(v.status);
      },
      'a chunk to be done',
      120_000,
    );
    expect((await view()).status).toBe('running'); // the kill lands mid-batch, a chunk in hand
    const victim = p.workers[0]!;
    victim.child.kill('SIGKILL');
    await victim.exited;
    await p.addWorker(WORKER_ENV);
    const done = await until(
      async () => {
        const v = await view();
        return ['completed', 'failed', 'cancelled'].includes(v.status) ? v : null;
      },
      'the batch to end',
      240_000,
    );
    expect(done.error ?? '').toBe('');
    expect(done).toMatchObject({ status: 'completed', requestCounts: { total: 2 * perFile, completed: 2 * perFile, failed: 0 } });

    const manifest = JSON.parse((await lake.get('t/out/_manifest.json')).toString()) as { parts: { uri: string; rows: number; source: { uri: string } }[] };
    const names = (i: number) => String(i).padStart(5, '0');
    const expectedKeys = [
      ...Array.from({ length: chunks.total }, (_, i) => `t/out/_errors/part-${names(i)}.jsonl`),
      't/out/_manifest.json',
      ...Array.from({ length: chunks.total }, (_, i) => `t/out/part-${names(i)}.csv`),
    ].sort();
    expect((await lake.list('t/out/', 10_000)).map((o) => o.key)).toEqual(expectedKeys);
    expect(manifest.parts.map((q) => q.uri)).toEqual(Array.from({ length: chunks.total }, (_, i) => `s3://${BUCKET}/t/out/part-${names(i)}.csv`));
    // Every row once, in order per file: the parts' CSV rows (a header each) in manifest order.
    const ids: string[] = [];
    for (const part of manifest.parts) {
      const lines = (await lake.get(part.uri.replace(`s3://${BUCKET}/`, ''))).toString().trim().split('\n').filter(Boolean);
      if (part.rows) expect(lines[0]!.startsWith('row,id,')).toBe(true);
      expect(lines.length - (part.rows ? 1 : 0)).toBe(part.rows);
      for (const l of lines.slice(1)) ids.push(l.split(',')[1]!);
    }
    expect(ids).toEqual([0, 1].flatMap((f) => Array.from({ length: perFile }, (_, i) => `${f}-${i}`)));
    expect(s3.pendingUploads(BUCKET)).toEqual([]);
  });
});

// The OpenAI batch finalizer over native batches, on real Redis and a filesystem store, with the
// native batch's state written as its jobs leave it: lines whose rows were all scored are answers,
// a line with a failed row is a 400, a line with a row not scored (its chunk never ran) is expired
// when the window ended and left out after a cancel, and a native batch that lost a chunk fails it.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchStore } from '../../core/batches.ts';
import { batchKeys, type BatchSpec } from '../../core/jobs/batch.ts';
import { type BatchRecord, openaiKeys, OpenaiStore, type ResolvedModel } from '../../core/openai-batch.ts';
import { FsStore } from '../../core/storage/index.ts';
import { finalizeOpenaiBatch } from '../../workers/inference/openai-finalize.ts';
import { nativeId } from '../../workers/inference/openai-natives.ts';
import { deleteKeys } from '../helpers/platform.ts';

const prefix = `mqtest-oaifin-${randomBytes(4).toString('hex')}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oaifin-'));
const store = new FsStore(dir);
let redis: Redis;
let openai: OpenaiStore;
let batches: BatchStore;
const deps = () => ({ store, openai, redis, prefix, ttlMs: 60_000 });

const mlp: ResolvedModel = {
  name: 'mlp',
  version: 1,
  sha256: 'x',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 2] }],
};

beforeAll(() => {
  redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  openai = new OpenaiStore(redis, prefix);
  batches = new BatchStore(redis, prefix);
});
afterAll(async () => {
  await deleteKeys(redis, prefix);
  await redis?.quit();
  fs.rmSync(dir, { recursive: true, force: true });
});

const jsonl = (xs: unknown[]) => xs.map((x) => `${JSON.stringify(x)}\n`).join('');

/**
 * An OpenAI batch of four lines (a: row 0; r: refused; b: rows 1-2; c: row 3) whose native batch has
 * two chunks (rows 0-1, rows 2-3): the first scored (row 1 failed), the second never ran.
 */
async function setup(status: string, nativeStatus: 'cancelled' | 'failed'): Promise<string> {
  const id = `batch_${randomBytes(12).toString('hex')}`;
  const native = nativeId(id, 0);
  const now = Math.floor(Date.now() / 1000);
  const record: BatchRecord = {
    id,
    tenant: 't',
    endpoint: '/v2/models/mlp/infer',
    input_file_id: 'file-x',
    completion_window: '1h',
    metadata: null,
    created_at: now - 7200,
    expires_at: now - 3600,
    models: { mlp },
    total: 4,
    refused: 1,
    natives: [{ id: native, model: 'mlp@1', rows: 4 }],
  };
  await openai.createBatch(record);
  await openai.setFields(id, { status });
  await store.put(
    openaiKeys.lineMap(id),
    jsonl([
      { c: 'a', g: 0, k: 1 },
      { c: 'r', e: { code: 'bad_request', message: 'missing input "input"' } },
      { c: 'b', g: 0, k: 2 },
      { c: 'c', g: 0, k: 1 },
    ]),
  );
  const spec = {
    id: native,
    tenant: 't',
    model: mlp,
    format: 'jsonl',
    inputKey: batchKeys.input(native),
    bytes: 1,
    totalRows: 4,
    chunks: 2,
    chunkRows: 2,
    createdAt: new Date().toISOString(),
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
  } satisfies BatchSpec;
  await batches.create(spec);
  await store.put(batchKeys.output(native, 0), jsonl([{ row: 0, id: 'a', outputs: { output: [0.5, 1.5] } }]));
  await store.put(batchKeys.errors(native, 0), jsonl([{ row: 1, id: 'b', error: { code: 'bad_row', message: 'not a number' } }]));
  if (nativeStatus === 'cancelled') await batches.recordChunk(native, 0, { completed: 1, failed: 1 });
  if (nativeStatus === 'cancelled') await batches.transition(native, 'cancelled', ['queued']);
  else await batches.fail(native, 'chunk 1 failed: boom');
  return id;
}

const fileLines = async (fileId: string) => {
  const parts: Buffer[] = [];
  for await (const b of await store.read(openaiKeys.file(fileId))) parts.push(b as Buffer);
  return Buffer.concat(parts)
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
};

describe('openai-finalize over native batches', () => {
  it('the window ended: answered, refused and failed lines in order, lines with rows not scored expired', async () => {
    const id = await setup('in_progress', 'cancelled');
    expect(await finalizeOpenaiBatch(id, deps())).toEqual({ status: 'expired' });
    const b = (await openai.batch(id))!;
    expect(b.fields.status).toBe('expired');
    expect(JSON.parse(b.fields.counts!)).toEqual({ completed: 1, failed: 2, expired: 1 });
    const out = await fileLines(b.fields.output_file_id!);
    expect(out.map((l) => [l.custom_id, l.response.body.outputs[0]])).toEqual([['a', { name: 'output', datatype: 'FP32', shape: [1, 2], data: [0.5, 1.5] }]]);
    const err = await fileLines(b.fields.error_file_id!);
    expect(err.map((l) => [l.custom_id, l.response?.status_code ?? l.error.code])).toEqual([
      ['r', 400],
      ['b', 400],
      ['c', 'batch_expired'],
    ]);
    expect(err[1].response.body.error.message).toBe('row 0: not a number');
    // A rerun changes nothing.
    expect(await finalizeOpenaiBatch(id, deps())).toEqual({ status: 'expired' });
  });

  it('cancelled: the lines not run are left out', async () => {
    const id = await setup('cancelling', 'cancelled');
    expect(await finalizeOpenaiBatch(id, deps())).toEqual({ status: 'cancelled' });
    const b = (await openai.batch(id))!;
    expect(JSON.parse(b.fields.counts!)).toEqual({ completed: 1, failed: 2, expired: 0 });
    expect((await fileLines(b.fields.error_file_id!)).map((l) => l.custom_id)).toEqual(['r', 'b']);
  });

  it('a native batch that lost a chunk fails the batch, saying why', async () => {
    const id = await setup('in_progress', 'failed');
    expect(await finalizeOpenaiBatch(id, deps())).toEqual({ status: 'failed' });
    const b = (await openai.batch(id))!;
    expect(b.fields.status).toBe('failed');
    expect(JSON.parse(b.fields.errors!)).toMatchObject([{ code: 'server_error', message: 'model mlp@1: chunk 1 failed: boom' }]);
    expect(b.fields.output_file_id).toBeUndefined();
  });
});

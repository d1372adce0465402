// An OpenAI batch's rows as native batches: one per model its lines name, whose input is the lines'
// native rows (openai-map.ts) in line order, chunked by the native scanner and limits, and whose
// flows run under the OpenAI batch's finalizer (openai-jobs.ts), with a delayed `openai-expire` at
// the end of its completion window.
import { createHash } from 'node:crypto';
import { FlowProducer } from 'bullmq';
import type { Redis } from 'ioredis';
import { nativeBatchFlow } from '../../core/batch-flow.ts';
import { BatchStore } from '../../core/batches.ts';
import type { Config } from '../../core/config.ts';
import { AppError } from '../../core/errors.ts';
import { batchKeys, type BatchSpec } from '../../core/jobs/batch.ts';
import { type BatchRecord, OPENAI_JOBS, openaiKeys, type OpenaiStore, type ResolvedModel } from '../../core/openai-batch.ts';
import { defaultJobOptions } from '../../core/queues.ts';
import { type ChunkRange, RowScanner } from '../../core/rows/scanner.ts';
import type { ArtifactStore } from '../../core/storage/index.ts';
import { toNativeRows } from './openai-map.ts';
import { linesOf, modelRefOf } from './openai-read.ts';

export interface NativeDeps {
  store: ArtifactStore;
  openai: OpenaiStore;
  redis: Redis;
  prefix: string;
  cfg?: Partial<
    Pick<Config, 'MODELQ_BATCH_CHUNK_ROWS' | 'MODELQ_BATCH_CHUNK_BYTES' | 'MODELQ_BATCH_MAX_ROWS' | 'MODELQ_BATCH_MAX_CHUNKS' | 'MODELQ_BATCH_TTL'>
  >;
}

/** The native batch `g` of an OpenAI batch: derived from its id, so a rerun finds the same one. */
export const nativeId = (batchId: string, g: number) => `batch_${createHash('sha256').update(`${batchId}/${g}`).digest('hex').slice(0, 20)}`;

/** The resolved model of a native batch's `name@version`. */
export const modelOf = (record: BatchRecord, key: string): ResolvedModel | undefined =>
  Object.values(record.models ?? {}).find((m) => `${m.name}@${m.version}` === key);

/** What enqueueing a native batch needs besides the record: its input's size and chunks. */
type Planned = Record<number, { bytes: number; chunks: ChunkRange[] }>;

/** Bytes gathered before a piece of native input goes to the scanner and the store. */
const PIECE_BYTES = 256 * 1024;

/** Native batch `g`'s input: the native rows of its lines, in line order, while the scanner marks its chunks. */
async function* nativeInput(record: BatchRecord, g: number, scanner: RowScanner, d: NativeDeps): AsyncGenerator<Buffer> {
  const key = record.natives![g]!.model;
  let text = '';
  const flush = () => {
    const buf = Buffer.from(text);
    text = '';
    try {
      scanner.push(buf);
    } catch (e) {
      if (e instanceof RangeError) throw new AppError('bad_request', `the batch has ${e.message}; the limit is MODELQ_BATCH_MAX_ROWS`);
      throw e;
    }
    return buf;
  };
  for await (const l of linesOf(await d.store.read(openaiKeys.file(record.input_file_id)))) {
    if (!l.text.trim()) continue;
    const v = JSON.parse(l.text) as { custom_id: string; url: string; body: Record<string, unknown> };
    const m = record.models![modelRefOf(v.url, v.body) ?? '']!;
    if (`${m.name}@${m.version}` !== key) continue;
    const mapped = toNativeRows(v, m);
    if ('error' in mapped) continue; // the line's own error, in the line map
    for (const r of mapped.rows) text += `${r}\n`;
    if (text.length >= PIECE_BYTES) yield flush();
  }
  if (text) yield flush();
}

/**
 * Writes each native batch's input (none when the window has already passed: nothing is scored)
 * and keeps their chunks on the OpenAI batch; sets the natives' ids. A batch past the native
 * limits (rows, chunks) is a bad_request naming the limit.
 */
export async function writeNatives(record: BatchRecord, expired: boolean, d: NativeDeps): Promise<void> {
  const planned: Planned = {};
  for (const [g, n] of (record.natives ?? []).entries()) {
    if (expired || n.rows === 0) continue;
    n.id = nativeId(record.id, g);
    const chunkRows = d.cfg?.MODELQ_BATCH_CHUNK_ROWS ?? 5000;
    const scanner = new RowScanner('jsonl', {
      chunkRows,
      ...(d.cfg?.MODELQ_BATCH_CHUNK_BYTES ? { chunkBytes: d.cfg.MODELQ_BATCH_CHUNK_BYTES } : {}),
      ...(d.cfg?.MODELQ_BATCH_MAX_ROWS ? { maxRows: d.cfg.MODELQ_BATCH_MAX_ROWS } : {}),
    });
    await d.store.put(batchKeys.input(n.id), nativeInput(record, g, scanner, d));
    const scan = scanner.end();
    if (scan.rows !== n.rows) throw new AppError('internal', `native batch ${g} of ${record.id} has ${scan.rows} rows, validation counted ${n.rows}`);
    const max = d.cfg?.MODELQ_BATCH_MAX_CHUNKS;
    if (max !== undefined && scan.chunks.length > max)
      throw new AppError(
        'bad_request',
        `the batch would have ${scan.chunks.length} chunks of ${chunkRows} rows for model ${n.model}; the limit is MODELQ_BATCH_MAX_CHUNKS (${max})`,
      );
    planned[g] = { bytes: scan.bytes, chunks: scan.chunks };
  }
  await d.openai.setFields(record.id, { plan: JSON.stringify(planned) });
}

let flows: FlowProducer | undefined;

/**
 * One flow per OpenAI batch: `openai-finalize` on `batch`, whose children are the native batches'
 * own flows; the native records are created first (once). Fixed job ids: a rerun adds nothing twice.
 */
export async function enqueueOpenaiFlow(record: BatchRecord, d: NativeDeps): Promise<{ status: string }> {
  const planned = JSON.parse((await d.openai.batch(record.id))?.fields.plan ?? '{}') as Planned;
  const batches = new BatchStore(d.redis, d.prefix);
  const children = [];
  for (const [g, n] of (record.natives ?? []).entries()) {
    const plan = planned[g];
    if (!n.id || !plan) continue;
    if (!(await batches.spec(n.id))) {
      const m = modelOf(record, n.model)!;
      const now = Date.now();
      const spec: BatchSpec = {
        id: n.id,
        tenant: record.tenant,
        model: { name: m.name, version: m.version, sha256: m.sha256, inputs: m.inputs, outputs: m.outputs },
        format: 'jsonl',
        inputKey: batchKeys.input(n.id),
        bytes: plan.bytes,
        totalRows: n.rows,
        chunks: plan.chunks.length,
        chunkRows: d.cfg?.MODELQ_BATCH_CHUNK_ROWS ?? 5000,
        metadata: { openai_batch: record.id },
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + (d.cfg?.MODELQ_BATCH_TTL ?? 7 * 24 * 3600 * 1000)).toISOString(),
      };
      await batches.create(spec);
    }
    children.push(nativeBatchFlow({ id: n.id }, plan.chunks, { asChild: true }));
  }
  // Cancelled while the native records were being made (the cancel found none to cancel): cancel them here.
  if ((await d.openai.status(record.id)) === 'cancelling')
    for (const n of record.natives ?? []) if (n.id) await batches.transition(n.id, 'cancelling', ['queued']);
  flows ??= new FlowProducer({ connection: d.redis, prefix: d.prefix });
  await flows.add({
    name: OPENAI_JOBS.finalize,
    queueName: 'batch',
    data: { batchId: record.id },
    opts: { ...defaultJobOptions.batch, jobId: `${record.id}-finalize` },
    children,
  });
  const delay = record.expires_at * 1000 - Date.now();
  if (children.length && delay > 0) {
    await flows.add({
      name: OPENAI_JOBS.expire,
      queueName: 'batch',
      data: { batchId: record.id },
      opts: { ...defaultJobOptions.batch, jobId: `${record.id}-expire`, delay },
    });
  }
  return { status: 'in_progress' };
}

/** At the window's end: the native batches still under way are cancelled, so their unstarted chunks skip and their lines end expired. */
export async function expireOpenaiBatch(batchId: string, d: NativeDeps): Promise<{ expired: number }> {
  const b = await d.openai.batch(batchId);
  if (!b || b.fields.status !== 'in_progress' || Date.now() / 1000 < b.record.expires_at) return { expired: 0 };
  const batches = new BatchStore(d.redis, d.prefix);
  let expired = 0;
  for (const n of b.record.natives ?? []) if (n.id && (await batches.transition(n.id, 'cancelling', ['queued', 'running']))) expired++;
  return { expired };
}

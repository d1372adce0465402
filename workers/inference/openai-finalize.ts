// `openai-finalize` on the `batch` queue: runs after the OpenAI batch's native batches have ended
// (they are its flow's children) and writes its output and error files in line order, from the line
// map and the native output and error rows (openai-map.ts), then ends it: completed, expired (some
// lines were not run before the window ended), cancelled, or failed when a native batch could not
// score all its rows (a chunk or its finalizer failed for good).
import { createHash } from 'node:crypto';
import { jsonlPart, type PartKind } from '../../core/batch-parts.ts';
import { BatchStore } from '../../core/batches.ts';
import { AppError } from '../../core/errors.ts';
import type { BatchSpec } from '../../core/jobs/batch.ts';
import { type BatchRecord, type LineCounts, openaiKeys, type OpenaiStatus } from '../../core/openai-batch.ts';
import { type MapEntry, type NativeRow, openaiLine, type Outcome } from './openai-map.ts';
import { modelOf, type NativeDeps } from './openai-natives.ts';
import { linesOf } from './openai-read.ts';

export type FinalizeDeps = NativeDeps & { ttlMs: number };

/** A native batch's scored chunks, for reading its rows. */
type Scored = { spec: BatchSpec; chunks: number[] } | null;

/** The rows of a native batch's output or error parts, in row order (chunks in order, each in row order). */
async function* partRows(s: Scored, kind: PartKind, d: NativeDeps): AsyncGenerator<NativeRow> {
  if (!s) return;
  for (const i of s.chunks) {
    const { store, key } = jsonlPart(s.spec, kind, i, d.store);
    if (!(await store.stat(key))) continue;
    for await (const l of linesOf(await store.read(key))) if (l.text.trim()) yield JSON.parse(l.text) as NativeRow;
  }
}

/** The next row of a stream, looked at before it is taken. */
class Peek {
  private head: NativeRow | undefined;
  private done = false;
  constructor(private readonly it: AsyncGenerator<NativeRow>) {}
  /** The row numbered `n` when it is next (rows come in order), else undefined. */
  async take(n: number): Promise<NativeRow | undefined> {
    while (!this.done && (this.head === undefined || this.head.row < n)) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.head = r.value;
    }
    if (this.head?.row !== n) return undefined;
    const row = this.head;
    this.head = undefined;
    return row;
  }
}

/** Every line's outcome, in line order: the line map joined with the native rows. */
async function* outcomes(record: BatchRecord, scored: Scored[], unscored: 'expired' | 'omitted', d: NativeDeps): AsyncGenerator<Outcome> {
  const natives = record.natives ?? [];
  const out = scored.map((s) => new Peek(partRows(s, 'output', d)));
  const err = scored.map((s) => new Peek(partRows(s, 'errors', d)));
  const next = natives.map(() => 0);
  for await (const l of linesOf(await d.store.read(openaiKeys.lineMap(record.id)))) {
    if (!l.text) continue;
    const e = JSON.parse(l.text) as MapEntry;
    if ('e' in e) {
      yield openaiLine(e, [], undefined, record.endpoint, unscored);
      continue;
    }
    const first = next[e.g]!;
    next[e.g] = first + e.k;
    const rows: (NativeRow | undefined)[] = [];
    for (let r = first; r < first + e.k; r++) rows.push((await out[e.g]!.take(r)) ?? (await err[e.g]!.take(r)));
    yield openaiLine(e, rows, modelOf(record, natives[e.g]!.model), record.endpoint, unscored);
  }
}

/** The file id of a batch's output or error file: derived from the batch id, so a rerun replaces it. */
const fileIdOf = (batchId: string, kind: string) => `file-${createHash('sha256').update(`${batchId}/${kind}`).digest('hex').slice(0, 24)}`;

/** Writes the lines of one kind into one file of the tenant; null when there are none. Counts every line on the way. */
async function compose(
  record: BatchRecord,
  kind: 'output' | 'errors',
  lines: AsyncGenerator<Outcome>,
  counts: LineCounts,
  d: FinalizeDeps,
): Promise<string | null> {
  async function* text(): AsyncGenerator<Buffer> {
    let buf = '';
    for await (const o of lines) {
      if (!o) continue;
      counts[o.kind]++;
      if ((o.kind === 'completed') === (kind === 'output')) buf += `${o.text}\n`;
      if (buf.length >= 256 * 1024) {
        yield Buffer.from(buf);
        buf = '';
      }
    }
    if (buf) yield Buffer.from(buf);
  }
  const id = fileIdOf(record.id, kind);
  const put = await d.store.put(openaiKeys.file(id), text());
  if (put.bytes === 0) {
    await d.store.delete(openaiKeys.file(id)).catch(() => {});
    return null;
  }
  const now = Math.floor(Date.now() / 1000);
  await d.openai.putFile({
    id,
    tenant: record.tenant,
    bytes: put.bytes,
    created_at: now,
    expires_at: now + Math.floor(d.ttlMs / 1000),
    filename: `${record.id}_${kind}.jsonl`,
    purpose: kind === 'output' ? 'batch_output' : 'batch_error',
  });
  return id;
}

/** The native batches' scored chunks; or why one of them cannot give all its rows. */
async function scoredChunks(record: BatchRecord, d: NativeDeps): Promise<{ scored: Scored[] } | { error: string }> {
  const batches = new BatchStore(d.redis, d.prefix);
  const scored: Scored[] = [];
  for (const n of record.natives ?? []) {
    if (!n.id) {
      scored.push(null);
      continue;
    }
    const v = await batches.view(n.id);
    if (!v) return { error: `the native batch of model ${n.model} (${n.id}) is gone` };
    const chunks = [...(await batches.outcomes(n.id)).keys()].sort((a, b) => a - b);
    // Failed with every chunk scored is a batch whose every row failed: those rows are error lines.
    if (v.status === 'failed' && chunks.length < v.spec.chunks) return { error: `model ${n.model}: ${v.error ?? 'the native batch failed'}` };
    scored.push({ spec: v.spec, chunks });
  }
  return { scored };
}

export async function finalizeOpenaiBatch(batchId: string, d: FinalizeDeps): Promise<{ status: OpenaiStatus }> {
  const b = await d.openai.batch(batchId);
  if (!b) throw new AppError('not_found', `batch ${batchId} no longer exists`);
  const status = b.fields.status as OpenaiStatus;
  if (status !== 'in_progress' && status !== 'cancelling' && status !== 'finalizing') return { status }; // a rerun
  const found = await scoredChunks(b.record, d);
  if ('error' in found) {
    await d.openai.setFields(batchId, { errors: JSON.stringify([{ code: 'server_error', message: found.error, param: null, line: null }]) });
    await d.openai.transition(batchId, 'failed', ['in_progress', 'finalizing', 'cancelling']);
    return { status: 'failed' };
  }
  if (status !== 'cancelling') await d.openai.transition(batchId, 'finalizing', ['in_progress']);
  // Lines not run: cancelled, they are left out; else the window ended first (openai-expire), and they are expired.
  const unscored = status === 'cancelling' ? 'omitted' : 'expired';
  const counts: LineCounts = { completed: 0, failed: 0, expired: 0 };
  const output = await compose(b.record, 'output', outcomes(b.record, found.scored, unscored, d), counts, d);
  const errors = await compose(b.record, 'errors', outcomes(b.record, found.scored, unscored, d), { completed: 0, failed: 0, expired: 0 }, d);
  // A batch past its window ends expired with what it has, as OpenAI's do.
  const end: OpenaiStatus = status === 'cancelling' ? 'cancelled' : counts.expired > 0 ? 'expired' : 'completed';
  await d.openai.setFields(batchId, {
    counts: JSON.stringify(counts),
    ...(output ? { output_file_id: output } : {}),
    ...(errors ? { error_file_id: errors } : {}),
  });
  await d.openai.transition(batchId, end, end === 'cancelled' ? ['cancelling'] : ['finalizing', 'cancelling']);
  return { status: end };
}

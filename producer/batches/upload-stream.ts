// An uploaded JSONL/CSV batch scored while it arrives (#26 item 2). The rows are counted as the
// bytes pass (core/rows/scanner.ts: a native newline search per row, no parsing), and each chunk,
// once it closes, is stored as an object of its own (batchKeys.inputPart) and enqueued at once, as
// a child of the batch's flow: the first chunks are scored while later rows are still arriving.
// The flow's `finalize` parent is held by an `upload` gate child, removed when the upload has all
// arrived (then the spec gets its rows, chunks and bytes); until then the status says
// `uploading: true` and `requestCounts.total: null`. A refusal mid-upload (too many rows or
// chunks, too many bytes, a broken connection) fails the batch, waits for its chunks to stop, and
// removes it with its parts: nothing is left behind.
import type { Queue } from 'bullmq';
import { BatchStore } from '../../core/batches.ts';
import { badRequest } from '../../core/errors.ts';
import { batchKeys, type BatchSpec } from '../../core/jobs/batch.ts';
import { batchChunkJobOptions, defaultJobOptions } from '../../core/queues.ts';
import { HeaderTooLongError, type ChunkRange, type RowScanner } from '../../core/rows/scanner.ts';
import { TooLargeError } from '../../core/storage/index.ts';
import type { ProducerDeps } from '../deps.ts';

/** How long a refused upload waits for its running chunks to stop before removing the batch. */
const STOP_WAIT_MS = 60_000;
/** The gate's delay: an upload whose producer died is ended by the gate firing (the batch fails, naming why). */
export const UPLOAD_GATE_DELAY_MS = 6 * 3600_000;
export const uploadGateId = (batchId: string) => `${batchId}-upload`;

export interface StreamedUpload {
  id: string;
  /**
   * The spec, built when the first chunk closes (a CSV header is known then: this checks it and
   * may refuse the file); rows, chunks and bytes are filled in at the end.
   */
  specAt: (header: string | undefined) => BatchSpec;
  scanner: RowScanner;
  queueName: 'score' | 'score-gpu';
  maxBytes: number;
  maxChunks: number;
  chunkRows: number;
}

/** Bytes [start, end) of the buffers held, which start at `base`: views of them, not copies. */
function slice(held: Buffer[], base: number, start: number, end: number): Buffer[] {
  const out: Buffer[] = [];
  let at = base;
  for (const b of held) {
    const s = Math.max(start, at);
    const e = Math.min(end, at + b.length);
    if (e > s) out.push(b.subarray(s - at, e - at));
    at += b.length;
    if (at >= end) break;
  }
  return out;
}

/**
 * Reads the whole body, storing and enqueuing each chunk as it closes. Returns the batch's id once
 * the upload has all arrived and the spec is complete; throws (a 400/413) after removing whatever
 * was created when the upload is refused.
 */
export async function streamUpload(d: ProducerDeps, body: AsyncIterable<Buffer>, u: StreamedUpload): Promise<{ rows: number; chunks: number }> {
  const { scanner, id } = u;
  let spec: BatchSpec | undefined;
  const batches = new BatchStore(d.redis, d.prefix);
  const scoreQueue: Queue = d.queues.queue(u.queueName);
  const parent = { id, queue: `${d.queues.prefix}:batch` };
  let created = false;
  let enqueued = 0;
  let bytes = 0;
  // Bytes from `base` on, down to the start of the first chunk not stored yet.
  let held: Buffer[] = [];
  let base = 0;

  const create = async () => {
    spec = u.specAt(scanner.headerLine);
    await batches.create({ ...spec, uploading: true });
    created = true;
    await d.queues.flowProducer().add({
      name: 'finalize',
      queueName: 'batch',
      data: { batchId: id },
      opts: { ...defaultJobOptions.batch, jobId: id },
      children: [{ name: 'upload', queueName: 'batch', data: { batchId: id }, opts: { jobId: uploadGateId(id), delay: UPLOAD_GATE_DELAY_MS } }],
    });
  };
  const store = async (c: ChunkRange) => {
    if (!created) await create();
    if (c.index >= u.maxChunks)
      throw badRequest(
        `the batch would have more than ${u.maxChunks} chunks at chunkRows=${u.chunkRows} (the limit is MODELQ_BATCH_MAX_CHUNKS): send a larger chunkRows, or split the file`,
      );
    // Views of the held buffers, never joined: a file store writes them with writev(2), a few calls per chunk.
    // Its sha256 is of no use (a chunk is read back whole by its own job): a file store does not hash it.
    await d.store.put(batchKeys.inputPart(id, c.index), slice(held, base, c.start, c.end), { sha256: false });
    await scoreQueue.add(
      'score',
      { batchId: id, index: c.index, start: c.start, end: c.end, firstRow: c.firstRow, rows: c.rows },
      { ...batchChunkJobOptions(u.queueName, `${id}-${c.index}`), parent },
    );
    enqueued = c.index + 1;
  };
  const flush = async (chunks: readonly ChunkRange[]) => {
    while (enqueued < chunks.length) await store(chunks[enqueued]!);
    // Drop the buffers wholly before the next chunk's first byte (the open row's start bounds it).
    const keepFrom = scanner.pendingFrom;
    while (held.length && base + held[0]!.length <= keepFrom) base += held.shift()!.length;
  };

  try {
    for await (const buf of body) {
      bytes += buf.length;
      if (bytes > u.maxBytes) throw new TooLargeError(u.maxBytes);
      held.push(buf);
      try {
        scanner.push(buf);
      } catch (e) {
        if (e instanceof RangeError) throw badRequest(`the file has ${e.message}; the limit is MODELQ_BATCH_MAX_ROWS`);
        if (e instanceof HeaderTooLongError) throw badRequest(e.message);
        throw e;
      }
      await flush(scanner.closedChunks);
    }
    const scan = scanner.end();
    if (scan.rows === 0) throw badRequest(scan.bytes === 0 ? 'the file is empty' : 'the file has no rows');
    await flush(scan.chunks);
    held = [];
    if (!spec) throw new Error('an upload with rows made no chunk');
    const done: BatchSpec = {
      ...spec,
      bytes: scan.bytes,
      totalRows: scan.rows,
      chunks: scan.chunks.length,
      ...(scan.header !== undefined ? { header: scan.header } : {}),
    };
    if (!(await batches.updateSpec(done))) throw new Error(`batch ${id} was removed while its upload arrived`);
    // Every chunk is a child now: the finalizer may run once they end.
    await (await d.queues.queue('batch').getJob(uploadGateId(id)))?.remove();
    return { rows: scan.rows, chunks: scan.chunks.length };
  } catch (e) {
    if (created) await abandon(d, batches, id, (e as Error).message);
    throw e;
  }
}

/** A refused upload: its chunks stop (the batch is failed), and its flow and parts are removed once no chunk runs. */
async function abandon(d: ProducerDeps, batches: BatchStore, id: string, why: string): Promise<void> {
  const q = d.queues.queue('batch');
  try {
    await batches.fail(id, `the upload was refused: ${why}`);
    const until = Date.now() + STOP_WAIT_MS;
    for (;;) {
      // The parent with its children (the gate, chunks not started); refused while a chunk runs (locked).
      const removed = (await q.remove(id, { removeChildren: true }).catch(() => 0)) === 1;
      if (removed || (await q.getJobState(id)) === 'unknown' || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await d.store.deletePrefix(batchKeys.dir(id)).catch(() => {});
    await batches.remove(id).catch(() => {});
  }
}

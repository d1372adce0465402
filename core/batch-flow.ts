// The BullMQ flow of a native batch: a `finalize` parent on `batch` with one `score` child per chunk
// (fixed job ids, so adding it twice adds nothing twice). Another flow may carry it as a child (an
// OpenAI batch's finalizer runs after its native batches): then a native batch that fails for good
// still lets that parent run.
import type { FlowJob } from 'bullmq';
import type { BatchSpec } from './jobs/batch.ts';
import { batchChunkJobOptions, defaultJobOptions } from './queues.ts';
import type { ChunkRange } from './rows/scanner.ts';

export function nativeBatchFlow(
  spec: Pick<BatchSpec, 'id'>,
  chunks: readonly ChunkRange[],
  opts: { queueName?: 'score' | 'score-gpu'; asChild?: boolean } = {},
): FlowJob {
  const queueName = opts.queueName ?? 'score';
  return {
    name: 'finalize',
    queueName: 'batch',
    data: { batchId: spec.id },
    opts: { ...defaultJobOptions.batch, jobId: spec.id, ...(opts.asChild ? { ignoreDependencyOnFailure: true } : {}) },
    children: chunks.map((c) => ({
      name: 'score',
      queueName,
      data: { batchId: spec.id, index: c.index, start: c.start, end: c.end, firstRow: c.firstRow, rows: c.rows },
      opts: batchChunkJobOptions(queueName, `${spec.id}-${c.index}`),
    })),
  };
}

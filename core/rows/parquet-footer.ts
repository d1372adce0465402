// A Parquet file's plan and row groups from its footer, parsed where it cannot stall the caller: a
// footer is a few KB usually, but a hostile one of a few MB can list millions of structs, and
// parsing it took the producer's event loop for a minute. Footers up to INLINE_BYTES are parsed in
// place (tens of milliseconds at worst); larger ones in a worker thread with a memory bound, ended
// after `timeoutMs`. Either way the footer was first refused past MODELQ_PARQUET_MAX_FOOTER_BYTES
// (readFooter), and what comes back is the plan and the chunks, not the parsed metadata.
import { Worker } from 'node:worker_threads';
import type { TensorSpec } from '../tensors.ts';
import { ParquetShapeError } from './parquet-errors.ts';
import { metadataOf, parquetIgnoredColumns, planParquet, rowGroupChunks, type ParquetPlan } from './parquet.ts';
import type { ChunkRange } from './scanner.ts';

/** Footers up to this size are parsed on the calling thread: starting a thread costs more than they do. */
export const INLINE_BYTES = 64 * 1024;
/** The footer thread's heap: parsed metadata is some tens of times the footer's bytes. */
const THREAD_HEAP_MB = 512;

export interface FooterJob {
  footer: Uint8Array;
  fileBytes: number;
  inputs: TensorSpec[];
  groupRows: number;
}

export interface FooterPlan {
  plan: ParquetPlan;
  chunks: ChunkRange[];
  rows: number;
  /** The file's columns that feed no input (a target, notes), `id` aside. */
  ignored: string[];
}

/** Parses and plans (on this thread). */
export function footerPlan(job: FooterJob): FooterPlan {
  try {
    return plan(job);
  } catch (e) {
    // The metadata is the file's: a reader tripping on it (a TypeError included) means the file is wrong.
    if (e instanceof ParquetShapeError) throw e;
    throw new ParquetShapeError(`not a Parquet file: ${(e as Error).message}`);
  }
}

function plan(job: FooterJob): FooterPlan {
  const meta = metadataOf(job.footer);
  const plan = planParquet(meta, job.inputs);
  const chunks = rowGroupChunks(meta, { fileBytes: job.fileBytes, footerBytes: job.footer.length, groupRows: job.groupRows }).map((c, index) => ({
    ...c,
    index,
  }));
  return { plan, chunks, rows: chunks.reduce((n, c) => n + c.rows, 0), ignored: parquetIgnoredColumns(meta, plan) };
}

/** footerPlan, in a worker thread for a footer past INLINE_BYTES; ParquetShapeError for a file that is wrong or too costly to parse. */
export async function footerPlanBounded(job: FooterJob, timeoutMs: number): Promise<FooterPlan> {
  if (job.footer.length <= INLINE_BYTES) return footerPlan(job);
  const worker = new Worker(new URL('./parquet-footer-thread.mjs', import.meta.url), {
    workerData: job,
    name: 'modelq-parquet-footer',
    resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB },
  });
  try {
    return await new Promise<FooterPlan>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new ParquetShapeError(`parsing the Parquet footer (${job.footer.length} bytes) took longer than MODELQ_PARQUET_FOOTER_TIMEOUT (${timeoutMs} ms)`),
          ),
        timeoutMs,
      );
      const done = () => clearTimeout(timer);
      worker.once('message', (m: { ok: true; value: FooterPlan } | { ok: false; message: string; shape: boolean }) => {
        done();
        if (m.ok) resolve(m.value);
        else reject(m.shape ? new ParquetShapeError(m.message) : new ParquetShapeError(`not a Parquet file: ${m.message}`));
      });
      worker.once('error', (e: Error & { code?: string }) => {
        done();
        reject(
          e.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new ParquetShapeError(`the Parquet footer (${job.footer.length} bytes) needs more than ${THREAD_HEAP_MB} MB to parse`)
            : e,
        );
      });
      worker.once('exit', (code) => {
        done();
        reject(new Error(`the Parquet footer thread exited with code ${code}`));
      });
    });
  } finally {
    await worker.terminate();
  }
}

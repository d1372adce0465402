// Messages between the engine (main thread) and its session threads.
import type { RawTensor } from '../../core/tensors.ts';
import type { RowGroupJob } from './score-parquet.ts';
import type { SegmentJob } from './score-segment.ts';

export interface ThreadInit {
  device: 'cpu' | 'cuda';
  intraOpThreads: number;
  cacheBytes: number;
  /** MODELQ_FAST_ROWS: batch rows by the hand-written fast paths (workers/rows/fast-rows.ts, parquet-fast.ts). */
  fastRows: boolean;
}

/** `label` (name@version) only names the model in figures. */
export interface ModelHandle {
  sha256: string;
  path: string;
  label?: string;
}

export type ToThread =
  | { op: 'inspect'; id: number; model: ModelHandle }
  /** Create the model's session (if this thread has none yet) so that requests find it ready. */
  | { op: 'load'; id: number; model: ModelHandle }
  /** Drop the model's session (its version was erased): the thread answers, then reports it evicted. */
  | { op: 'unload'; id: number; model: ModelHandle }
  | { op: 'run'; id: number; model: ModelHandle; feeds: Record<string, RawTensor>; outputs?: string[] }
  /** Parse, run and format one segment of a batch chunk (score-segment.ts). */
  | { op: 'score'; id: number; model: ModelHandle; job: SegmentJob }
  /** The same for one Parquet row group (score-parquet.ts). */
  | { op: 'score-row-group'; id: number; model: ModelHandle; job: RowGroupJob };

export type ErrorKind = 'invalid_model' | 'bad_request' | 'internal';

export type FromThread =
  | { op: 'ready'; device: 'cpu' | 'cuda'; warning?: string }
  | { op: 'warning'; message: string }
  /** The thread began this task (the watchdog's clock for its time budget starts here). */
  | { op: 'start'; id: number }
  /** The thread dropped this model's session to stay within its cache bound. */
  | { op: 'evicted'; sha256: string }
  | {
      op: 'result';
      id: number;
      ok: true;
      value: unknown;
      computeMs: number;
      loadMs: number;
      wallMs?: number;
      /** onnxruntime runs it took (segments) */ runs?: number;
    }
  | { op: 'result'; id: number; ok: false; kind: ErrorKind; message: string };

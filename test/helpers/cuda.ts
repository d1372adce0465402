// Whether this machine can run onnxruntime's CUDA execution provider, found by creating a session
// that may use only CUDA. GPU tests assert what a GPU host sees when this is true and are skipped,
// with the reason printed, when it is false (the only skips the test rules allow).
import * as ort from 'onnxruntime-node';
import { tinyMlp } from '../fixtures/models.ts';

export interface CudaProbe {
  available: boolean;
  /** Why not, in one line (empty when available). */
  reason: string;
}

let probe: Promise<CudaProbe> | undefined;

export function probeCuda(): Promise<CudaProbe> {
  probe ??= (async () => {
    if (process.env.CUDA_VISIBLE_DEVICES === '-1') return { available: false, reason: 'CUDA_VISIBLE_DEVICES=-1 hides every GPU' };
    try {
      const s = await ort.InferenceSession.create(tinyMlp(), { executionProviders: ['cuda'] });
      await s.release();
      return { available: true, reason: '' };
    } catch (e) {
      const first = ((e as Error).message ?? String(e)).split('\n')[0]!.slice(0, 160);
      return { available: false, reason: `no CUDA execution provider on this machine (${first})` };
    }
  })();
  return probe;
}

/** For a test file's top level: the probe, and a console line naming the reason when GPU tests will be skipped. */
export async function cudaForTests(file: string): Promise<CudaProbe> {
  const p = await probeCuda();
  if (!p.available) console.log(`${file}: GPU-host tests skipped: ${p.reason}`);
  return p;
}

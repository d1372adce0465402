// Inside the footer thread: parses the footer it was given, plans the columns and the row groups,
// and posts back only the plan and the chunks (small), or the reason it cannot.
import { parentPort, workerData } from 'node:worker_threads';
import { footerPlan, type FooterJob } from './parquet-footer.ts';

try {
  parentPort!.postMessage({ ok: true, value: footerPlan(workerData as FooterJob) });
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message, shape: (e as Error).name === 'ParquetShapeError' });
}

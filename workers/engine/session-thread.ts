// Runs inside an engine thread: owns onnxruntime sessions (cached by model sha256, bounded by an
// estimate of their memory) and executes runs. No other module of the platform imports onnxruntime.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { AppError } from '../../core/errors.ts';
import { fromOrtType, type RawTensor, type TensorSpec } from '../../core/tensors.ts';
import type { ErrorKind, FromThread, ModelHandle, ThreadInit, ToThread } from './messages.ts';
import { scoreRowGroup } from './score-parquet.ts';
import { scoreSegment, type RunFeeds } from './score-segment.ts';
import { explainingRun, type RunOutputs } from './explain-rows.ts';
import { RowSampler } from './drift-rows.ts';
import { countRows } from '../../core/drift/index.ts';
import { injectFault } from './test-faults.ts';

const init = workerData as ThreadInit;
const port = parentPort!;
let device: 'cpu' | 'cuda' = init.device;

interface Entry {
  session: ort.InferenceSession;
  bytes: number;
  lastUsed: number;
}
const cache = new Map<string, Entry>();
let cachedBytes = 0;

class ThreadError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

function post(m: FromThread, transfer: ArrayBuffer[] = []) {
  port.postMessage(m, transfer);
}

function sessionOptions(cuda: boolean): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: cuda ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: init.intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  };
}

function evict(need: number) {
  const entries = [...cache.entries()].sort((a, b) => a[1].lastUsed - b[1].lastUsed);
  for (const [key, e] of entries) {
    if (cachedBytes + need <= init.cacheBytes) break;
    cache.delete(key);
    cachedBytes -= e.bytes;
    post({ op: 'evicted', sha256: key });
    void e.session.release().catch(() => {});
  }
}

// Concurrent requests for a model that is not loaded yet share one load.
const loading = new Map<string, Promise<{ session: ort.InferenceSession; loadMs: number }>>();

async function session(model: ModelHandle): Promise<{ session: ort.InferenceSession; loadMs: number }> {
  const hit = cache.get(model.sha256);
  if (hit) {
    hit.lastUsed = Date.now();
    return { session: hit.session, loadMs: 0 };
  }
  const shared = loading.get(model.sha256);
  // Only the request that started a load reports its time: the engine counts each load once.
  if (shared) return { session: (await shared).session, loadMs: 0 };
  const p = load(model).finally(() => loading.delete(model.sha256));
  loading.set(model.sha256, p);
  return p;
}

async function load(model: ModelHandle): Promise<{ session: ort.InferenceSession; loadMs: number }> {
  const t0 = performance.now();
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(model.path);
  } catch (e) {
    throw new ThreadError('internal', `cannot read model file: ${(e as Error).message}`);
  }
  const cuda = device === 'cuda';
  let s: ort.InferenceSession;
  try {
    s = await ort.InferenceSession.create(bytes, sessionOptions(cuda));
  } catch (e) {
    const msg = (e as Error).message;
    if (cuda && /cuda|provider|libcu|cudnn/i.test(msg)) {
      // CUDA libraries missing: this thread uses the CPU from now on, and says so.
      device = 'cpu';
      post({ op: 'warning', message: `CUDA execution provider unavailable, using CPU: ${msg}` });
      return load(model);
    }
    throw new ThreadError('invalid_model', msg);
  }
  evict(bytes.length);
  cache.set(model.sha256, { session: s, bytes: bytes.length, lastUsed: Date.now() });
  cachedBytes += bytes.length;
  return { session: s, loadMs: performance.now() - t0 };
}

function spec(m: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!m.isTensor) throw new ThreadError('invalid_model', `"${m.name}" is not a tensor; only tensor inputs and outputs are supported`);
  return { name: m.name, datatype: fromOrtType(m.type), shape: m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) };
}

async function handle(msg: ToThread) {
  if (msg.op === 'unload') {
    const e = cache.get(msg.model.sha256);
    post({ op: 'result', id: msg.id, ok: true, value: null, computeMs: 0, loadMs: 0 });
    if (e) {
      cache.delete(msg.model.sha256);
      cachedBytes -= e.bytes;
      void e.session.release().catch(() => {});
    }
    // After the result (which marks the model held): the slot then forgets it.
    post({ op: 'evicted', sha256: msg.model.sha256 });
    return;
  }
  if (msg.op === 'load') {
    const { loadMs } = await session(msg.model);
    post({ op: 'result', id: msg.id, ok: true, value: null, computeMs: 0, loadMs });
    return;
  }
  if (msg.op === 'inspect') {
    const { session: s, loadMs } = await session(msg.model);
    let value;
    try {
      value = { inputs: s.inputMetadata.map(spec), outputs: s.outputMetadata.map(spec) };
    } catch (e) {
      if (e instanceof ThreadError) throw e;
      throw new ThreadError('invalid_model', (e as Error).message);
    }
    post({ op: 'result', id: msg.id, ok: true, value, computeMs: 0, loadMs });
    return;
  }
  const { session: s, loadMs } = await session(msg.model);
  if (msg.op === 'score' || msg.op === 'score-row-group') {
    injectFault(msg.job.bytes);
    const t0 = performance.now();
    let computeMs = 0;
    let runs = 0;
    const runSome: RunOutputs = async (feeds, outputs) => {
      const t1 = performance.now();
      runs++;
      try {
        return await runFeeds(s, feeds, outputs);
      } catch (e) {
        if (e instanceof ThreadError && e.kind === 'bad_request') throw new AppError('bad_request', e.message);
        throw e;
      } finally {
        computeMs += performance.now() - t1;
      }
    };
    let runOne: RunFeeds = (feeds) => runSome(feeds);
    // Explained batches add attributions to each run's rows; a share of the rows is drawn for drift.
    if (msg.job.explain) runOne = explainingRun(runOne, runSome, msg.job.explain);
    const sampler = msg.job.driftSample ? new RowSampler(msg.job.driftSample, Math.random, msg.job.driftMaxRows) : undefined;
    if (sampler) runOne = sampler.wrap(runOne);
    const value = msg.op === 'score' ? await scoreSegment(msg.job, runOne, init.fastRows) : await scoreRowGroup(msg.job, runOne, init.fastRows);
    const sample = sampler?.take();
    const profile = msg.job.driftProfile;
    if (sample && profile) {
      // Counted here, on this thread, rather than on the worker's main thread, which only adds the counts up.
      const counts = new Map<string, number>();
      const rows = countRows(
        profile,
        sample.inputs.map((t) => ({ name: t.name, shape: t.dims, data: t.data })),
        counts,
      );
      value.driftCounts = { rows, counts: [...counts] };
    } else if (sample) value.sample = sample;
    const f = value.formatted;
    post({ op: 'result', id: msg.id, ok: true, value, computeMs, loadMs, wallMs: performance.now() - t0, runs }, [
      value.out.buffer as ArrayBuffer,
      value.err.buffer as ArrayBuffer,
      ...(f ? [(f.format === 'csv' ? f.body : f.bytes).buffer as ArrayBuffer] : []),
    ]);
    return;
  }
  const t0 = performance.now();
  const value = await runFeeds(s, msg.feeds, msg.outputs);
  const computeMs = performance.now() - t0;
  const transfer: ArrayBuffer[] = [];
  for (const t of Object.values(value)) {
    const data = t.data;
    if (!Array.isArray(data) && data.buffer instanceof ArrayBuffer && !transfer.includes(data.buffer)) transfer.push(data.buffer);
  }
  try {
    post({ op: 'result', id: msg.id, ok: true, value, computeMs, loadMs }, transfer);
  } catch {
    post({ op: 'result', id: msg.id, ok: true, value, computeMs, loadMs }); // buffer owned by native code: copy
  }
}

/** One session.run on raw tensors; failures of the data are ThreadError `bad_request`. */
async function runFeeds(s: ort.InferenceSession, raw: Record<string, RawTensor>, outputs?: string[]): Promise<Record<string, RawTensor>> {
  const feeds: Record<string, ort.Tensor> = {};
  try {
    for (const [name, t] of Object.entries(raw)) {
      feeds[name] = new ort.Tensor(t.type as 'float32', t.data as Float32Array, t.dims);
    }
  } catch (e) {
    throw new ThreadError('bad_request', (e as Error).message);
  }
  let out: ort.InferenceSession.ReturnType;
  try {
    out = outputs ? await s.run(feeds, outputs) : await s.run(feeds);
  } catch (e) {
    throw new ThreadError('bad_request', (e as Error).message);
  }
  const value: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(out)) value[name] = { type: t.type, dims: [...t.dims], data: t.data as RawTensor['data'] };
  return value;
}

port.on('message', (msg: ToThread) => {
  post({ op: 'start', id: msg.id });
  handle(msg).catch((e: unknown) => {
    const kind: ErrorKind = e instanceof ThreadError ? e.kind : e instanceof AppError && e.code === 'bad_request' ? 'bad_request' : 'internal';
    post({ op: 'result', id: msg.id, ok: false, kind, message: (e as Error).message ?? String(e) });
  });
});

post({ op: 'ready', device });

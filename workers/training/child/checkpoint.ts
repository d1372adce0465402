// Everything a training run needs to continue exactly where it stopped: weights, Adam moments and
// bias-correction powers, the shuffle generator's state, the best epoch so far and the curve.
// Stored as one object (JSON header + float32 arrays), written atomically after every epoch.
import type { CurvePoint } from '../../../core/jobs/train.ts';

export interface TrainState {
  /** Hash of the dataset and hyperparameters: a checkpoint of a different run is never resumed. */
  specHash: string;
  /** Epochs completed. */
  epoch: number;
  rngState: number;
  /** Adam: steps taken and beta1^t, beta2^t as accumulated (recomputing them from t is not bit-exact). */
  step: number;
  beta1Power: number;
  beta2Power: number;
  params: Float32Array[];
  m: Float32Array[];
  v: Float32Array[];
  bestEpoch: number;
  bestValLoss: number;
  bestParams: Float32Array[];
  sinceBest: number;
  stopped: boolean;
  curve: CurvePoint[];
}

const MAGIC = 'MQCK1';

export function encodeCheckpoint(s: TrainState): Buffer {
  const groups = [s.params, s.m, s.v, s.bestParams];
  const { params, m, v, bestParams, ...scalars } = s;
  const header = Buffer.from(JSON.stringify({ magic: MAGIC, ...scalars, sizes: groups.map((g) => g.map((a) => a.length)) }));
  const parts: Buffer[] = [Buffer.alloc(4), header];
  parts[0]!.writeUInt32LE(header.length);
  for (const g of groups) for (const a of g) parts.push(Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  return Buffer.concat(parts);
}

export function decodeCheckpoint(buf: Buffer): TrainState {
  const len = buf.readUInt32LE(0);
  const h = JSON.parse(buf.toString('utf8', 4, 4 + len)) as Omit<TrainState, 'params' | 'm' | 'v' | 'bestParams'> & { magic: string; sizes: number[][] };
  if (h.magic !== MAGIC) throw new Error('not a modelq training checkpoint');
  let off = 4 + len;
  const [params, m, v, bestParams] = h.sizes.map((g) =>
    g.map((n) => {
      // Copy into a fresh aligned buffer: the header length leaves the floats unaligned in `buf`.
      const a = new Float32Array(n);
      Buffer.from(a.buffer).set(buf.subarray(off, off + n * 4));
      off += n * 4;
      return a;
    }),
  );
  const { magic: _magic, sizes: _sizes, ...scalars } = h;
  return { ...scalars, params: params!, m: m!, v: v!, bestParams: bestParams! };
}

// Output agreement between a model and its compressed child: cosine similarity of all float outputs
// together, and top-1 agreement over rows of [batch, classes] outputs.
import type * as ort from 'onnxruntime-node';

type Outputs = Record<string, ort.Tensor>;

const floats = (t: ort.Tensor) => (t.type === 'float32' ? (t.data as Float32Array) : null);

export function cosine(a: Outputs, b: Outputs): number {
  let dot = 0,
    na = 0,
    nb = 0;
  for (const [k, ta] of Object.entries(a)) {
    const da = floats(ta);
    const db = b[k] ? floats(b[k]!) : null;
    if (!da || !db || da.length !== db.length) continue;
    for (let i = 0; i < da.length; i++) {
      dot += da[i]! * db[i]!;
      na += da[i]! ** 2;
      nb += db[i]! ** 2;
    }
  }
  // Nothing compared, or an all-zero side: no evidence of agreement, never a perfect score.
  if (!na || !nb)
    throw new Error(`cosine over ${na ? 'an all-zero child output' : na === nb ? 'nothing (no float values, or all zero)' : 'an all-zero parent output'}`);
  return dot / Math.sqrt(na * nb);
}

export function top1(a: Outputs, b: Outputs): number | undefined {
  let same = 0,
    rows = 0;
  for (const [k, ta] of Object.entries(a)) {
    const da = floats(ta);
    const db = b[k] ? floats(b[k]!) : null;
    if (!da || !db || ta.dims.length !== 2 || ta.dims[1]! < 2) continue;
    const c = ta.dims[1]!;
    for (let r = 0; r < ta.dims[0]!; r++) {
      const arg = (d: Float32Array) => {
        let m = 0;
        for (let j = 1; j < c; j++) if (d[r * c + j]! > d[r * c + m]!) m = j;
        return m;
      };
      if (arg(da) === arg(db)) same++;
      rows++;
    }
  }
  return rows ? same / rows : undefined;
}

/** Not a degenerate comparison: the parent's outputs vary. */
export function spread(a: Outputs): number {
  let lo = Infinity,
    hi = -Infinity;
  for (const t of Object.values(a))
    for (const v of floats(t) ?? []) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  return hi - lo;
}

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exportMlp, exportStudent } from '../../../../workers/onnx/export-mlp.ts';
import { decodeModel } from '../../../../workers/onnx/proto.ts';
import { tmpDir } from '../../../fixtures/models.ts';

// A 2-3-2 network small enough to compute by hand: (x - mean) / scale -> W0,b0 -> relu -> W1,b1.
const layers = [
  { inputs: 2, outputs: 3, weights: Float32Array.of(1, 0, -1, 0, 1, 1), bias: Float32Array.of(0, 0.5, 0) },
  { inputs: 3, outputs: 2, weights: Float32Array.of(1, -1, 2, 0, 0, 1), bias: Float32Array.of(0.1, -0.1) },
];
const mean = Float32Array.of(1, 2);
const scale = Float32Array.of(2, 4);

function byHand(x: number[]): number[] {
  const s = x.map((v, i) => (v - mean[i]!) / scale[i]!);
  const h = [0, 1, 2].map((j) => Math.max(0, s[0]! * layers[0]!.weights[j]! + s[1]! * layers[0]!.weights[3 + j]! + layers[0]!.bias[j]!));
  return [0, 1].map((k) => h.reduce((a, v, j) => a + v * layers[1]!.weights[j * 2 + k]!, layers[1]!.bias[k]!));
}

const checker = (file: string) =>
  execFileSync('/usr/bin/python3', ['-c', 'import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)', file]);

describe('MLP export', () => {
  const rows = [
    [3, 2],
    [-1, 10],
    [1, 2],
  ];
  const x = new ort.Tensor('float32', Float32Array.from(rows.flat()), [3, 2]);

  it('classification: label (the class itself) and probabilities with the standardization in the graph, classes in metadata', async () => {
    const bytes = exportMlp({ featureNames: ['p', 'q'], mean, scale, layers, task: 'classification', classes: ['no', 'yes'], target: 't' });
    const m = decodeModel(bytes);
    expect(Number(m.opsetImport[0]!.version)).toBe(17);
    expect(Number(m.irVersion)).toBe(8);
    expect(Object.fromEntries(m.metadataProps.map((p) => [p.key, p.value]))).toMatchObject({
      'modelq.classes': '["no","yes"]',
      'modelq.features': '["p","q"]',
      'modelq.task': 'classification',
    });
    const s = await ort.InferenceSession.create(bytes);
    const out = await s.run({ features: x });
    expect(out.label!.type).toBe('string');
    expect(out.label!.dims).toEqual([3]);
    expect(out.probabilities!.dims).toEqual([3, 2]);
    rows.forEach((r, i) => {
      const z = byHand(r);
      const e = z.map(Math.exp);
      const p = e.map((v) => v / (e[0]! + e[1]!));
      expect((out.label!.data as string[])[i]).toBe(z[1]! > z[0]! ? 'yes' : 'no');
      p.forEach((v, k) => expect(Math.abs((out.probabilities!.data as Float32Array)[i * 2 + k]! - v)).toBeLessThan(1e-6));
    });
    const file = path.join(tmpDir('export'), 'c.onnx');
    fs.writeFileSync(file, bytes);
    checker(file);
    // Integer classes: an int64 label holding the class values.
    const ints = await (
      await ort.InferenceSession.create(exportMlp({ featureNames: ['p', 'q'], mean, scale, layers, task: 'classification', classes: [3, 7] }))
    ).run({
      features: x,
    });
    expect(ints.label!.type).toBe('int64');
    rows.forEach((r, i) => {
      const z = byHand(r);
      expect(Number((ints.label!.data as BigInt64Array)[i])).toBe(z[1]! > z[0]! ? 7 : 3);
    });
  });

  it('regression: prediction [N, 1] in target units', async () => {
    const reg = [layers[0]!, { inputs: 3, outputs: 1, weights: Float32Array.of(1, -2, 0.5), bias: Float32Array.of(0.25) }];
    const bytes = exportMlp({ featureNames: ['p', 'q'], mean, scale, layers: reg, task: 'regression', targetMean: 10, targetScale: 3 });
    const out = await (await ort.InferenceSession.create(bytes)).run({ features: x });
    expect(out.prediction!.dims).toEqual([3, 1]);
    rows.forEach((r, i) => {
      const s = r.map((v, f) => (v - mean[f]!) / scale[f]!);
      const h = [0, 1, 2].map((j) => Math.max(0, s[0]! * reg[0]!.weights[j]! + s[1]! * reg[0]!.weights[3 + j]! + reg[0]!.bias[j]!));
      const want = (h[0]! - 2 * h[1]! + 0.5 * h[2]! + 0.25) * 3 + 10;
      expect(Math.abs((out.prediction!.data as Float32Array)[i]! - want)).toBeLessThan(1e-5);
    });
    const file = path.join(tmpDir('export'), 'r.onnx');
    fs.writeFileSync(file, bytes);
    checker(file);
  });

  it('refuses shapes that do not fit', () => {
    expect(() => exportMlp({ featureNames: ['p'], mean, scale, layers, task: 'regression' })).toThrow(/features/);
    expect(() => exportMlp({ featureNames: ['p', 'q'], mean, scale, layers, task: 'classification', classes: ['a'] })).toThrow(/classes/);
  });
});

describe('distilled student export', () => {
  const rows = [
    [3, 2],
    [-1, 10],
    [1, 2],
  ];
  const write = (bytes: Uint8Array, name: string) => {
    const file = path.join(tmpDir('student'), `${name}.onnx`);
    fs.writeFileSync(file, bytes);
    return file;
  };

  it("keeps the teacher's input name and shape, flattening an image-like input per row", async () => {
    const bytes = exportStudent({
      input: { name: 'pixels', shape: ['N', 1, 2] },
      mean,
      scale,
      layers,
      heads: [
        { kind: 'scores', name: 'logits', shape: ['N', 2] },
        { kind: 'label', name: 'top', shape: ['N', 1] },
      ],
    });
    checker(write(bytes, 'flat'));
    const s = await ort.InferenceSession.create(bytes);
    expect(s.inputNames).toEqual(['pixels']);
    expect(s.outputNames).toEqual(['logits', 'top']);
    const out = await s.run({ pixels: new ort.Tensor('float32', Float32Array.from(rows.flat()), [3, 1, 2]) });
    rows.forEach((r, i) => {
      const want = byHand(r);
      expect(out.logits!.data[i * 2]).toBeCloseTo(want[0]!, 5);
      expect(out.logits!.data[i * 2 + 1]).toBeCloseTo(want[1]!, 5);
      expect(Number(out.top!.data[i])).toBe(want[0]! >= want[1]! ? 0 : 1);
    });
    expect(out.top!.dims).toEqual([3, 1]);
  });

  it('writes a value head as [batch] or [batch, 1] in target units', async () => {
    const one = [layers[0]!, { inputs: 3, outputs: 1, weights: Float32Array.of(1, 2, 0), bias: Float32Array.of(0.5) }];
    for (const shape of [['N'], ['N', 1]]) {
      const bytes = exportStudent({
        input: { name: 'x', shape: ['N', 2] },
        mean,
        scale,
        layers: one,
        heads: [{ kind: 'value', name: 'value', shape }],
        valueMean: 10,
        valueScale: 2,
      });
      checker(write(bytes, `value-${shape.length}`));
      const out = (await (await ort.InferenceSession.create(bytes)).run({ x: new ort.Tensor('float32', Float32Array.of(3, 2), [1, 2]) })).value!;
      expect(out.dims).toEqual(shape.length === 1 ? [1] : [1, 1]);
      // (3-1)/2 = 1, (2-2)/4 = 0 -> relu(1, 0.5, -1) = (1, 0.5, 0) -> 1 + 1 + 0.5 = 2.5 -> 2.5 * 2 + 10
      expect(out.data[0]).toBeCloseTo(15, 5);
    }
  });

  it('refuses tensor names that clash with the names it uses inside', () => {
    expect(() =>
      exportStudent({ input: { name: 'standardized', shape: ['N', 2] }, mean, scale, layers, heads: [{ kind: 'scores', name: 'y', shape: ['N', 2] }] }),
    ).toThrow(/"standardized" clashes/);
  });
});

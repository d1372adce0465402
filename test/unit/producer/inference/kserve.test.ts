// The KServe V1 conversion: instances to the inference-protocol request of a model, and the protocol
// answer back to one prediction (and explanation) per row.
import { describe, expect, it } from 'vitest';
import type { VersionRecord } from '../../../../core/registry.ts';
import { explanationsOf, instancesToInfer, predictionsOf } from '../../../../producer/inference/kserve.ts';

const version = (inputs: VersionRecord['inputs'], metadata?: Record<string, unknown>): VersionRecord => ({
  name: 'm',
  version: 1,
  sha256: 'x',
  bytes: 1,
  inputs,
  outputs: [],
  createdAt: '',
  ...(metadata ? { metadata } : {}),
});
const cols = version(
  [
    { name: 'age', datatype: 'FP32', shape: [-1, 1] },
    { name: 'city', datatype: 'BYTES', shape: [-1] },
  ],
  { classes: ['no', 'yes'] },
);

describe('KServe V1 conversion', () => {
  it('instances keyed by column become one tensor per input, missing values filled, other keys dropped, parameters passed on', () => {
    const r = instancesToInfer(
      { instances: [{ age: 3, city: 7, x: 1 }, { age: null }, { age: 'nan', city: { b64: 'w6lsYW4=' } }], parameters: { device: 'cpu' } },
      cols,
      {
        explain: false,
      },
    );
    expect(r.parameters).toEqual({ device: 'cpu', explain: false });
    expect(r.inputs).toEqual([
      { name: 'age', datatype: 'FP32', shape: [3, 1], data: [3, Number.NaN, Number.NaN] },
      { name: 'city', datatype: 'BYTES', shape: [3], data: ['7', '', 'élan'] },
    ]);
  });

  it("answers a prediction per row: outputs by name, probabilities keyed by the version's classes; attributions keyed by column", () => {
    const outputs = [
      { name: 'label', datatype: 'BYTES' as const, shape: [2], data: ['no', 'yes'] },
      { name: 'probabilities', datatype: 'FP32' as const, shape: [2, 2], data: [0.75, 0.25, 0.5, 0.5] },
      { name: 'attributions', datatype: 'FP32' as const, shape: [2, 2], data: [0.1, 0.2, 0.3, 0.4] },
    ];
    expect(predictionsOf(outputs, cols, 2)).toEqual([
      { label: 'no', probabilities: { no: 0.75, yes: 0.25 } },
      { label: 'yes', probabilities: { no: 0.5, yes: 0.5 } },
    ]);
    expect(explanationsOf(outputs, { explain_base: [0.5, 0.4], explain_class: [0, 1] }, cols, 2)).toEqual([
      { attributions: { age: 0.1, city: 0.2 }, base: 0.5, class: 0 },
      { attributions: { age: 0.3, city: 0.4 }, base: 0.4, class: 1 },
    ]);
    // Names the explanation gives win over the inputs'.
    expect(explanationsOf(outputs, { explain_features: ['a', 'b'] }, cols, 2)[0]).toEqual({ attributions: { a: 0.1, b: 0.2 } });
  });
});

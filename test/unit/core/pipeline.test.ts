// Pipeline graphs checked without a registry: the steps ordered after what they read, the specs of
// forEach outputs gaining the box dimension, a file pipeline's inputs named for the file doors; and
// the crop region of a box (rounded outwards, clipped, empty when nothing is left).
import { describe, expect, it } from 'vitest';
import { fileInputs, resolvePipeline, type StepModel } from '../../../core/processing/pipeline.ts';
import { boxRegion } from '../../../workers/processing/pipeline.ts';

const model = (name: string, inputs: StepModel['inputs'], outputs: StepModel['outputs'], extra: Partial<StepModel> = {}): StepModel => ({
  name,
  version: 2,
  sha256: name.padEnd(64, '0'),
  inputs,
  outputs,
  ...extra,
});
const MODELS: Record<string, StepModel> = {
  det: model('det', [{ name: 'img', datatype: 'FP32', shape: [-1, 3, 8, 8] }], [{ name: 'boxes', datatype: 'FP32', shape: [-1, 5, 4] }], {
    processing: { inputs: [{ type: 'image', input: 'img', resize: { mode: 'exact', width: 8, height: 8 }, channels: 'rgb', layout: 'nchw', dtype: 'fp32' }] },
  }),
  cls: model('cls', [{ name: 'img', datatype: 'FP32', shape: [-1, 3, 4, 4] }], [{ name: 'logits', datatype: 'FP32', shape: [-1, 7] }], {
    processing: {
      inputs: [{ type: 'image', input: 'img', resize: { mode: 'exact', width: 4, height: 4 }, channels: 'rgb', layout: 'nchw', dtype: 'fp32' }],
      post: { output: 'logits', softmax: false, argmax: true },
    },
  }),
};
const resolve = async (s: { model: string }) => MODELS[s.model]!;

describe('resolvePipeline', () => {
  it('orders the steps after what they read and gives forEach outputs the box dimension', async () => {
    const r = await resolvePipeline(
      {
        inputs: [{ name: 'photo', datatype: 'BYTES', shape: [-1] }],
        steps: [
          { name: 'each', model: 'cls', inputs: {}, forEach: { boxes: 'find.boxes', image: 'photo', units: 'normalized' } },
          { name: 'find', model: 'det', inputs: { img: 'photo' } },
        ],
        outputs: { label: 'each.label', logits: 'each.logits' },
      },
      resolve,
    );
    expect(r.pipeline.steps.map((s) => [s.name, s.version])).toEqual([
      ['find', 2],
      ['each', 2],
    ]);
    expect(r.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [-1, 5] },
      { name: 'logits', datatype: 'FP32', shape: [-1, 5, 7] },
    ]);
    expect(fileInputs({ pipeline: r.pipeline })).toEqual(['photo']);
  });

  it('refuses mixed file and tensor inputs, and a dynamic inner dimension', async () => {
    await expect(
      resolvePipeline(
        {
          inputs: [
            { name: 'photo', datatype: 'BYTES', shape: [-1] },
            { name: 'x', datatype: 'FP32', shape: [-1, 2] },
          ],
          steps: [{ name: 'find', model: 'det', inputs: { img: 'photo' } }],
          outputs: { b: 'find.boxes' },
        },
        resolve,
      ),
    ).rejects.toThrow(/for every input or for none/);
    await expect(
      resolvePipeline(
        {
          inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, -1] }],
          steps: [{ name: 'find', model: 'det', inputs: { img: 'x' } }],
          outputs: { b: 'find.boxes' },
        },
        resolve,
      ),
    ).rejects.toThrow(/only the first dimension may be dynamic/);
  });
});

describe('boxRegion', () => {
  const img = { width: 40, height: 20 };
  it('rounds a box outwards and clips it to the image', () => {
    expect(boxRegion([0.1, 0.11, 0.52, 0.9], img, 'normalized')).toEqual({ left: 4, top: 2, width: 17, height: 16 });
    expect(boxRegion([-5, 3.5, 50, 7.2], img, 'pixels')).toEqual({ left: 0, top: 3, width: 40, height: 5 });
  });
  it('is empty for a box of no area, outside the image, or not finite', () => {
    expect(boxRegion([0, 0, 0, 0], img, 'normalized')).toBeNull();
    expect(boxRegion([41, 2, 60, 9], img, 'pixels')).toBeNull();
    expect(boxRegion([Number.NaN, 0, 1, 1], img, 'normalized')).toBeNull();
  });
});

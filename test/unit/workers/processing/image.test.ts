// The image steps one by one, on pictures drawn here whose expected pixels are known: resize modes
// (exact, letterbox, fixed-height padded right, shorter-side with centre crop), channel order,
// normalisation, layout and precision; the pixel limit is read from the header.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageStepSchema, type ImageStep } from '../../../../core/processing/spec.ts';
import { decodePixels, imageTensor } from '../../../../workers/processing/image.ts';
import { claimedSizePng } from '../../../fixtures/images.ts';

const step = (s: Record<string, unknown>): ImageStep => imageStepSchema.parse({ type: 'image', input: 'x', ...s });
/** A solid picture, left half one colour, right half another. */
const halves = (width: number, height: number) =>
  sharp({ create: { width, height, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .composite([{ input: { create: { width: width / 2, height, channels: 3, background: { r: 0, g: 0, b: 255 } } }, left: width / 2, top: 0 }])
    .png()
    .toBuffer();
const at = (px: { data: Buffer; width: number }, x: number, y: number) => Array.from(px.data.subarray((y * px.width + x) * 3, (y * px.width + x) * 3 + 3));

describe('resize modes', () => {
  it('exact stretches to the size; letterbox keeps the ratio and pads both sides', async () => {
    const file = await halves(40, 20);
    const exact = await decodePixels(file, step({ resize: { mode: 'exact', width: 10, height: 10 } }));
    expect([exact.width, exact.height]).toEqual([10, 10]);
    expect(at(exact, 0, 5)).toEqual([255, 0, 0]);
    expect(at(exact, 9, 5)).toEqual([0, 0, 255]);
    const box = await decodePixels(file, step({ resize: { mode: 'letterbox', width: 20, height: 20, pad: 7 } }));
    expect([box.width, box.height]).toEqual([20, 20]);
    expect(at(box, 10, 0)).toEqual([7, 7, 7]); // 40x20 into 20x20: 20x10 centred, bands above and below
    expect(at(box, 2, 10)).toEqual([255, 0, 0]);
  });

  it('fixed-height keeps the ratio up to maxWidth and pads on the right', async () => {
    const file = await halves(40, 20);
    const line = await decodePixels(file, step({ resize: { mode: 'fixed-height', height: 10, maxWidth: 32, pad: 9 } }));
    expect([line.width, line.height]).toEqual([32, 10]);
    expect(at(line, 0, 5)).toEqual([255, 0, 0]);
    expect(at(line, 19, 5)).toEqual([0, 0, 255]);
    expect(at(line, 20, 5)).toEqual([9, 9, 9]);
    const wide = await decodePixels(await halves(200, 20), step({ resize: { mode: 'fixed-height', height: 10, maxWidth: 32 } }));
    expect([wide.width, wide.height]).toEqual([32, 10]); // squeezed to the maximum, no padding
  });

  it('shorter-side then a centre crop', async () => {
    const px = await decodePixels(await halves(60, 30), step({ resize: { mode: 'shorter-side', size: 10 }, centerCrop: { width: 8, height: 8 } }));
    expect([px.width, px.height]).toEqual([8, 8]);
    expect(at(px, 0, 0)).toEqual([255, 0, 0]); // 20x10, columns 6..13: 6..9 red, 10..13 blue
    expect(at(px, 7, 0)).toEqual([0, 0, 255]);
  });

  it('refuses from the header an image over the pixel limit, and a file that is no image', async () => {
    await expect(decodePixels(await claimedSizePng(5000, 5000), step({}), 1_000_000)).rejects.toThrow(/5000x5000 .* over MODELQ_MAX_IMAGE_PIXELS/);
    await expect(decodePixels(Buffer.from('nope'), step({}))).rejects.toThrow(/does not decode/);
  });
});

describe('tensor layout', () => {
  it('BGR and scale, NHWC, FP16', async () => {
    const file = await sharp({ create: { width: 2, height: 2, channels: 3, background: { r: 10, g: 20, b: 30 } } })
      .png()
      .toBuffer();
    const nchw = await imageTensor([file, file], step({ resize: { mode: 'exact', width: 2, height: 2 }, normalize: { scale: 0.5, offset: 1 } }));
    expect(nchw.dims).toEqual([2, 3, 2, 2]);
    expect(Array.from(nchw.data as Float32Array).slice(0, 12)).toEqual([6, 6, 6, 6, 11, 11, 11, 11, 16, 16, 16, 16]);
    const nhwc = await imageTensor([file], step({ resize: { mode: 'exact', width: 2, height: 2 }, channels: 'bgr', layout: 'nhwc' }));
    expect(nhwc.dims).toEqual([1, 2, 2, 3]);
    expect(Array.from(nhwc.data as Float32Array).slice(0, 6)).toEqual([30, 20, 10, 30, 20, 10]);
    const half = await imageTensor(
      [file],
      step({ resize: { mode: 'exact', width: 2, height: 2 }, dtype: 'fp16', normalize: { mean: [0, 0, 0], std: [1, 1, 1] } }),
    );
    expect(half.type).toBe('float16');
    // 10/255 = 1.2549 x 2^-5: biased exponent 10, mantissa 0.2549 x 1024
    expect((half.data as Uint16Array)[0]).toBe((10 << 10) + Math.round((10 / 255 / 2 ** -5 - 1) * 1024));
  });
});

// The image steps one by one, on pictures drawn here whose expected pixels are known: resize modes
// (exact, letterbox, fixed-height padded right, shorter-side with centre crop), channel order,
// normalisation, layout and precision; the pixel limit is read from the header. A file shaped in one
// sharp call gives the pixels of decoding it whole and then resizing, cropping and padding.
import sharp, { type Sharp } from 'sharp';
import { describe, expect, it } from 'vitest';
import { imageStepSchema, type ImageStep } from '../../../../core/processing/spec.ts';
import { decodePixels, imageTensor } from '../../../../workers/processing/image.ts';
import { claimedSizePng, draw } from '../../../fixtures/images.ts';

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

describe('one sharp call per file', () => {
  /** Decoded whole, then each step from the raw pixels (as a script would). */
  const stepwise = async (file: Buffer, s: ImageStep) => {
    const d = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const raw = (data: Buffer, width: number, height: number) => sharp(data, { raw: { width, height, channels: 3 } });
    const r = s.resize;
    let px = { data: d.data, width: d.info.width, height: d.info.height };
    const next = async (img: Sharp) => {
      const o = await img.raw().toBuffer({ resolveWithObject: true });
      px = { data: o.data, width: o.info.width, height: o.info.height };
    };
    if (r?.mode === 'shorter-side') {
      const k = r.size / Math.min(px.width, px.height);
      await next(raw(px.data, px.width, px.height).resize(Math.round(px.width * k), Math.round(px.height * k), { fit: 'fill' }));
    } else if (r?.mode === 'letterbox')
      await next(raw(px.data, px.width, px.height).resize(r.width, r.height, { fit: 'contain', background: { r: r.pad, g: r.pad, b: r.pad } }));
    else if (r?.mode === 'fixed-height') {
      const w = Math.min(r.maxWidth, Math.round((px.width * r.height) / px.height));
      await next(raw(px.data, px.width, px.height).resize(w, r.height, { fit: 'fill' }));
      await next(raw(px.data, px.width, px.height).extend({ right: r.maxWidth - w, background: { r: r.pad, g: r.pad, b: r.pad } }));
    }
    const c = s.centerCrop;
    if (c)
      await next(
        raw(px.data, px.width, px.height).extract({ left: (px.width - c.width) >> 1, top: (px.height - c.height) >> 1, width: c.width, height: c.height }),
      );
    return px;
  };

  it('JPEG, PNG and WebP shrunk many times equal decoding whole then resizing (no shrink while decoding)', async () => {
    const d = {
      width: 643,
      height: 481,
      background: [30, 120, 200] as [number, number, number],
      circle: [200, 150, 90, '#ff2020'] as [number, number, number, string],
    };
    const steps = [
      step({ resize: { mode: 'shorter-side', size: 20 }, centerCrop: { width: 16, height: 16 } }),
      step({ resize: { mode: 'letterbox', width: 40, height: 40, pad: 114 } }),
      step({ resize: { mode: 'fixed-height', height: 24, maxWidth: 64, pad: 3 } }),
    ];
    for (const format of ['jpeg', 'png', 'webp'] as const) {
      const file = await draw(d, format);
      for (const s of steps) {
        const [got, want] = await Promise.all([decodePixels(file, s), stepwise(file, s)]);
        expect([got.width, got.height, format]).toEqual([want.width, want.height, format]);
        expect(got.data.equals(want.data), `${format} ${JSON.stringify(s.resize)}`).toBe(true);
      }
    }
  });

  it('grey and RGBA files are decoded to RGB first', async () => {
    const s = step({ resize: { mode: 'shorter-side', size: 8 }, centerCrop: { width: 8, height: 8 } });
    const grey = await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 90, g: 90, b: 90 } } })
      .greyscale()
      .png()
      .toBuffer();
    const rgba = await sharp({ create: { width: 40, height: 20, channels: 4, background: { r: 200, g: 10, b: 20, alpha: 1 } } })
      .png()
      .toBuffer();
    expect(at(await decodePixels(grey, s), 4, 4)).toEqual([90, 90, 90]);
    expect(at(await decodePixels(rgba, s), 4, 4)).toEqual([200, 10, 20]);
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

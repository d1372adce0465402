// The JPEG and PNG headers read without sharp agree with sharp's metadata where they answer, and
// answer nothing for files the one-call path must not take (grey, alpha, palette, 16-bit, WebP, junk).
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { rgbHeader } from '../../../../workers/processing/image-header.ts';
import { claimedSizePng, draw, drawRotatedJpeg } from '../../../fixtures/images.ts';

const d = { width: 37, height: 23, background: [30, 120, 200] as [number, number, number], circle: [10, 10, 6, '#ff2020'] as [number, number, number, string] };
const create = (channels: 3 | 4) => sharp({ create: { width: 31, height: 17, channels, background: { r: 9, g: 80, b: 200, alpha: 0.5 } } });

describe('rgbHeader', () => {
  it('reads the size and orientation of RGB JPEGs and PNGs as sharp does', async () => {
    const files = [
      await draw(d, 'jpeg'),
      await draw(d, 'png'),
      await drawRotatedJpeg(d),
      await create(3).jpeg({ progressive: true }).toBuffer(),
      await create(3).jpeg().withMetadata({ orientation: 3 }).toBuffer(),
      await create(3).withIccProfile('p3').jpeg().toBuffer(),
      await claimedSizePng(5000, 4000),
    ];
    for (const f of files) {
      const m = await sharp(f).metadata();
      expect(rgbHeader(f)).toEqual({ format: m.format, width: m.width, height: m.height, orientation: m.orientation ?? 1 });
    }
    expect(rgbHeader(files[2]!)?.orientation).toBe(6);
  });

  it('answers nothing for other files', async () => {
    const files = [
      await create(3).toColourspace('b-w').jpeg().toBuffer(),
      await create(3).toColourspace('b-w').png().toBuffer(),
      await create(4).png().toBuffer(),
      await create(3).png({ palette: true }).toBuffer(),
      await create(3).toColourspace('rgb16').png().toBuffer(),
      await draw(d, 'webp'),
      (await draw(d, 'jpeg')).subarray(0, 40),
      Buffer.from('not an image at all'),
      Buffer.alloc(0),
    ];
    for (const [i, f] of files.entries()) expect(rgbHeader(f), `file ${i}`).toBeUndefined();
  });
});

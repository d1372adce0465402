// Files -> an image input tensor, as a version's processing declares (core/processing/spec.ts).
// sharp decodes on libuv's thread pool, so the worker's event loop keeps moving jobs meanwhile. The
// pixel count is read from the header first: a file over MODELQ_MAX_IMAGE_PIXELS is refused before
// a pixel is decoded.
import sharp, { type Metadata } from 'sharp';
import { AppError } from '../../core/errors.ts';
import { outputSize, type ImageStep } from '../../core/processing/spec.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { toHalf } from '../onnx/half.ts';

export const DEFAULT_MAX_IMAGE_PIXELS = 40_000_000;

/** A file that cannot become this input: its row fails alone, naming the cause. */
export class FileError extends AppError {
  constructor(message: string) {
    super('bad_request', message);
  }
}

/** Decoded, oriented, resized and cropped pixels: height x width x 3, 8 bits, RGB. */
export async function decodePixels(
  file: Buffer,
  step: ImageStep,
  maxPixels = DEFAULT_MAX_IMAGE_PIXELS,
): Promise<{ data: Buffer; width: number; height: number }> {
  let meta: Metadata;
  try {
    meta = await sharp(file).metadata();
  } catch (e) {
    throw new FileError(`the file does not decode as an image (${(e as Error).message})`);
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (!pixels) throw new FileError('the file does not decode as an image (no size in its header)');
  if (pixels > maxPixels)
    throw new FileError(`the image is ${meta.width}x${meta.height} (${pixels} pixels), over MODELQ_MAX_IMAGE_PIXELS (${maxPixels}); refused before decoding`);
  try {
    // rotate() with no angle applies the EXIF orientation; sRGB without alpha gives 3 channels from any source.
    let img = sharp(file, { limitInputPixels: maxPixels, failOn: 'error' }).rotate().removeAlpha().toColourspace('srgb');
    const r = step.resize;
    const size = { width: meta.width!, height: meta.height! };
    if (meta.orientation && meta.orientation >= 5) [size.width, size.height] = [size.height, size.width];
    if (r?.mode === 'exact') {
      img = img.resize(r.width, r.height, { fit: 'fill' });
      Object.assign(size, { width: r.width, height: r.height });
    } else if (r?.mode === 'letterbox') {
      img = img.resize(r.width, r.height, { fit: 'contain', background: { r: r.pad, g: r.pad, b: r.pad } });
      Object.assign(size, { width: r.width, height: r.height });
    } else if (r?.mode === 'shorter-side') {
      const scale = r.size / Math.min(size.width, size.height);
      const width = Math.max(1, Math.round(size.width * scale));
      const height = Math.max(1, Math.round(size.height * scale));
      img = img.resize(width, height, { fit: 'fill' });
      Object.assign(size, { width, height });
    } else if (r?.mode === 'fixed-height') {
      const width = Math.max(1, Math.min(r.maxWidth, Math.round((size.width * r.height) / size.height)));
      img = img.resize(width, r.height, { fit: 'fill' });
      if (width < r.maxWidth) {
        // Padded in a second pipeline over the resized pixels, so the order of the steps is explicit.
        const resized = await img.raw().toBuffer({ resolveWithObject: true });
        img = sharp(resized.data, { raw: { width, height: r.height, channels: 3 } }).extend({
          right: r.maxWidth - width,
          background: { r: r.pad, g: r.pad, b: r.pad },
        });
      }
      Object.assign(size, { width: r.maxWidth, height: r.height });
    }
    if (step.centerCrop) {
      const c = step.centerCrop;
      if (c.width > size.width || c.height > size.height)
        throw new FileError(`the image is ${size.width}x${size.height} after resizing, smaller than centerCrop ${c.width}x${c.height}`);
      const left = Math.floor((size.width - c.width) / 2);
      const top = Math.floor((size.height - c.height) / 2);
      // Cropped from the oriented, resized pixels, never from the stored ones.
      img = sharp(await img.raw().toBuffer(), { raw: { width: size.width, height: size.height, channels: 3 } });
      img = img.extract({ left, top, width: c.width, height: c.height });
      Object.assign(size, c);
    }
    const out = await img.raw().toBuffer({ resolveWithObject: true });
    if (out.info.channels !== 3) throw new FileError(`the image decodes to ${out.info.channels} channels, not 3`);
    return { data: out.data, width: out.info.width, height: out.info.height };
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(`the file does not decode as an image (${(e as Error).message})`);
  }
}

/** Writes one image's pixels into `dst` at `offset` in the step's channel order, normalisation and layout. */
export function writePixels(px: { data: Buffer; width: number; height: number }, step: ImageStep, dst: Float32Array, offset: number): void {
  const hw = px.width * px.height;
  const order = step.channels === 'bgr' ? [2, 1, 0] : [0, 1, 2];
  const n = step.normalize;
  const mul = [1, 1, 1];
  const add = [0, 0, 0];
  if (n && 'mean' in n) for (let c = 0; c < 3; c++) [mul[c], add[c]] = [1 / 255 / n.std[c]!, -n.mean[c]! / n.std[c]!];
  else if (n) for (let c = 0; c < 3; c++) [mul[c], add[c]] = [n.scale, n.offset];
  for (let c = 0; c < 3; c++) {
    const src = order[c]!;
    const m = mul[c]!;
    const a = add[c]!;
    for (let i = 0; i < hw; i++) {
      const v = px.data[i * 3 + src]! * m + a;
      dst[step.layout === 'nchw' ? offset + c * hw + i : offset + i * 3 + c] = v;
    }
  }
}

/** The files of one request's input as its tensor; a file that fails is reported with its index. */
export async function imageTensor(files: Buffer[], step: ImageStep, maxPixels?: number): Promise<RawTensor> {
  const size = outputSize(step)!;
  const per = size.width * size.height * 3;
  const out = new Float32Array(files.length * per);
  const pixels = await Promise.all(
    files.map((f, i) =>
      decodePixels(f, step, maxPixels).catch((e: unknown) => {
        throw new FileError(files.length > 1 ? `file ${i}: ${(e as Error).message}` : (e as Error).message);
      }),
    ),
  );
  pixels.forEach((px, i) => writePixels(px, step, out, i * per));
  const dims = step.layout === 'nchw' ? [files.length, 3, size.height, size.width] : [files.length, size.height, size.width, 3];
  if (step.dtype === 'fp16') return { type: 'float16', dims, data: Uint16Array.from(out, toHalf) };
  return { type: 'float32', dims, data: out };
}

// Files -> an image input tensor, as a version's processing declares (core/processing/spec.ts).
// sharp decodes on libuv's thread pool, so the worker's event loop keeps moving jobs meanwhile. The
// pixel count is read from the header first: a file over MODELQ_MAX_IMAGE_PIXELS is refused before
// a pixel is decoded.
import sharp, { type Metadata, type Sharp } from 'sharp';
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

/**
 * Decodes running at once in this process: each may hold up to MODELQ_MAX_IMAGE_PIXELS x 3 bytes,
 * so a request or chunk of many large files waits here instead of decoding them all together.
 * libuv's thread pool (4 threads by default) runs no more than this anyway.
 */
const MAX_DECODES = 4;
let decoding = 0;
const waiting: (() => void)[] = [];

async function limited<T>(f: () => Promise<T>): Promise<T> {
  // A finished decode hands its slot to the next waiter, so the count never overshoots.
  if (decoding >= MAX_DECODES) await new Promise<void>((r) => waiting.push(r));
  else decoding++;
  try {
    return await f();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else decoding--;
  }
}

/** Decoded, oriented, resized and cropped pixels: height x width x 3, 8 bits, RGB (at most MAX_DECODES at once). */
export function decodePixels(file: Buffer, step: ImageStep, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): Promise<Pixels> {
  return limited(async () => shapePixels(await decodeNow(file, maxPixels), step));
}

/** RGB pixels, 8 bits, height x width x 3. */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
}

/** Decoded and turned upright (EXIF orientation), not resized: what a pipeline crops its boxes from (at most MAX_DECODES at once). */
export function decodeUpright(file: Buffer, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): Promise<Pixels> {
  return limited(() => decodeNow(file, maxPixels));
}

/** The region [left, left + width) x [top, top + height) of decoded pixels, then the step's resize and crop. */
export async function cropPixels(px: Pixels, region: { left: number; top: number; width: number; height: number }, step: ImageStep): Promise<Pixels> {
  const out = await sharp(px.data, { raw: { width: px.width, height: px.height, channels: 3 } })
    .extract(region)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return shapePixels({ data: out.data, width: out.info.width, height: out.info.height }, step);
}

async function decodeNow(file: Buffer, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): Promise<Pixels> {
  let meta: Metadata;
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new FileError(`the file does not decode as an image (${(e as Error).message})`);
  }
  const pixels = (meta.width ?? 0) * (meta.height ?? 0);
  if (!pixels) throw new FileError('the file does not decode as an image (no size in its header)');
  if (pixels > maxPixels)
    throw new FileError(`the image is ${meta.width}x${meta.height} (${pixels} pixels), over MODELQ_MAX_IMAGE_PIXELS (${maxPixels}); refused before decoding`);
  try {
    // Decoded whole first (rotate() with no angle applies the EXIF orientation; sRGB without alpha
    // gives 3 channels from any source), then resized from those pixels: sharp would otherwise shrink
    // JPEG and WebP while decoding, which gives other pixels than a decode-then-resize script.
    const dec = await sharp(file, { limitInputPixels: maxPixels, failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (dec.info.channels !== 3) throw new FileError(`the image decodes to ${dec.info.channels} channels, not 3`);
    return { data: dec.data, width: dec.info.width, height: dec.info.height };
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(`the file does not decode as an image (${(e as Error).message})`);
  }
}

/** Decoded pixels resized and centre-cropped as the step declares. */
async function shapePixels(decoded: Pixels, step: ImageStep): Promise<Pixels> {
  let px = decoded;
  try {
    const next = async (f: (img: Sharp) => Sharp) => {
      const out = await f(sharp(px.data, { raw: { width: px.width, height: px.height, channels: 3 } }))
        .raw()
        .toBuffer({ resolveWithObject: true });
      px = { data: out.data, width: out.info.width, height: out.info.height };
    };
    const r = step.resize;
    if (r?.mode === 'exact') await next((img) => img.resize(r.width, r.height, { fit: 'fill' }));
    else if (r?.mode === 'letterbox') await next((img) => img.resize(r.width, r.height, { fit: 'contain', background: { r: r.pad, g: r.pad, b: r.pad } }));
    else if (r?.mode === 'shorter-side') {
      const scale = r.size / Math.min(px.width, px.height);
      const [width, height] = [Math.max(1, Math.round(px.width * scale)), Math.max(1, Math.round(px.height * scale))];
      await next((img) => img.resize(width, height, { fit: 'fill' }));
    } else if (r?.mode === 'fixed-height') {
      const width = Math.max(1, Math.min(r.maxWidth, Math.round((px.width * r.height) / px.height)));
      await next((img) => img.resize(width, r.height, { fit: 'fill' }));
      if (width < r.maxWidth) await next((img) => img.extend({ right: r.maxWidth - width, background: { r: r.pad, g: r.pad, b: r.pad } }));
    }
    const c = step.centerCrop;
    if (c) {
      if (c.width > px.width || c.height > px.height)
        throw new FileError(`the image is ${px.width}x${px.height} after resizing, smaller than centerCrop ${c.width}x${c.height}`);
      const [left, top] = [Math.floor((px.width - c.width) / 2), Math.floor((px.height - c.height) / 2)];
      await next((img) => img.extract({ left, top, width: c.width, height: c.height }));
    }
    return px;
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

/** The files of one request's image input as its tensor; a file that fails is reported with its index. */
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

// Files -> an image input tensor, as a version's processing declares (core/processing/spec.ts).
// sharp decodes on libuv's thread pool, so the worker's event loop keeps moving jobs meanwhile. The
// pixel count is read from the header first: a file over MODELQ_MAX_IMAGE_PIXELS is refused before
// a pixel is decoded.
import sharp, { type Metadata, type Sharp } from 'sharp';
import { AppError } from '../../core/errors.ts';
import { outputSize, type ImageStep } from '../../core/processing/spec.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { toHalf } from '../onnx/half.ts';
import { rgbHeader } from './image-header.ts';

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
  return limited(async () => {
    // The usual file (8-bit sRGB, 3 channels, one page) in one sharp call: each call costs its
    // process a few hundred microseconds of main-thread time besides the decoding, and the decoded
    // picture is never copied out whole. Its header is read here when it is a plain JPEG or PNG
    // (image-header.ts), by sharp otherwise. Anything else is decoded to RGB first, then shaped.
    const quick = rgbHeader(file);
    if (quick) {
      refuseOver(quick.width, quick.height, maxPixels);
      if (quick.orientation === 1 && oneCallStep(step)) return shapeInOneCall(file, quick.width, quick.height, step, maxPixels);
    }
    const meta = await headerOf(file, maxPixels);
    if (oneCall(meta, step)) return shapeInOneCall(file, meta.width!, meta.height!, step, maxPixels);
    return shapePixels(await decodeNow(file, meta, maxPixels), step);
  });
}

/** RGB pixels, 8 bits, height x width x 3. */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
}

/** Decoded and turned upright (EXIF orientation), not resized: what a pipeline crops its boxes from (at most MAX_DECODES at once). */
export function decodeUpright(file: Buffer, maxPixels = DEFAULT_MAX_IMAGE_PIXELS): Promise<Pixels> {
  return limited(async () => decodeNow(file, await headerOf(file, maxPixels), maxPixels));
}

/** The region [left, left + width) x [top, top + height) of decoded pixels, then the step's resize and crop. */
export async function cropPixels(px: Pixels, region: { left: number; top: number; width: number; height: number }, step: ImageStep): Promise<Pixels> {
  const out = await sharp(px.data, { raw: { width: px.width, height: px.height, channels: 3 } })
    .extract(region)
    .raw()
    .toBuffer({ resolveWithObject: true });
  return shapePixels({ data: out.data, width: out.info.width, height: out.info.height }, step);
}

/** The file's header: its size refused over `maxPixels` before a pixel is decoded. */
async function headerOf(file: Buffer, maxPixels: number): Promise<Metadata> {
  let meta: Metadata;
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new FileError(`the file does not decode as an image (${(e as Error).message})`);
  }
  if (!meta.width || !meta.height) throw new FileError('the file does not decode as an image (no size in its header)');
  refuseOver(meta.width, meta.height, maxPixels);
  return meta;
}

function refuseOver(width: number, height: number, maxPixels: number): void {
  const pixels = width * height;
  if (pixels > maxPixels)
    throw new FileError(`the image is ${width}x${height} (${pixels} pixels), over MODELQ_MAX_IMAGE_PIXELS (${maxPixels}); refused before decoding`);
}

async function decodeNow(file: Buffer, meta: Metadata, maxPixels: number): Promise<Pixels> {
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

/** What the step does to a picture of width x height: resize (and pad), then centre crop. */
interface Plan {
  resize?: { width: number; height: number; fit: 'fill' | 'contain'; pad: number };
  /** Padding columns on the right after the resize (fixed-height narrower than maxWidth). */
  extend?: { right: number; pad: number };
  crop?: { left: number; top: number; width: number; height: number };
}

function planOf(width: number, height: number, step: ImageStep): Plan {
  const plan: Plan = {};
  const r = step.resize;
  if (r?.mode === 'exact') plan.resize = { width: r.width, height: r.height, fit: 'fill', pad: 0 };
  else if (r?.mode === 'letterbox') plan.resize = { width: r.width, height: r.height, fit: 'contain', pad: r.pad };
  else if (r?.mode === 'shorter-side') {
    const scale = r.size / Math.min(width, height);
    plan.resize = { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)), fit: 'fill', pad: 0 };
  } else if (r?.mode === 'fixed-height') {
    const w = Math.max(1, Math.min(r.maxWidth, Math.round((width * r.height) / height)));
    plan.resize = { width: w, height: r.height, fit: 'fill', pad: 0 };
    if (w < r.maxWidth) plan.extend = { right: r.maxWidth - w, pad: r.pad };
  }
  const w = (plan.resize?.width ?? width) + (plan.extend?.right ?? 0);
  const h = plan.resize?.height ?? height;
  const c = step.centerCrop;
  if (c) {
    if (c.width > w || c.height > h) throw new FileError(`the image is ${w}x${h} after resizing, smaller than centerCrop ${c.width}x${c.height}`);
    plan.crop = { left: Math.floor((w - c.width) / 2), top: Math.floor((h - c.height) / 2), width: c.width, height: c.height };
  }
  return plan;
}

const resizeOf = (r: NonNullable<Plan['resize']>) =>
  r.fit === 'contain' ? ({ fit: 'contain', background: { r: r.pad, g: r.pad, b: r.pad } } as const) : ({ fit: 'fill' } as const);

/**
 * Whether the file can be decoded and shaped in one sharp call with the same pixels as decoding it
 * whole first: 8-bit sRGB with 3 channels and no alpha (no colour conversion or premultiplying
 * around the resize), one page, upright, and no padding before a crop (sharp crops before it pads).
 */
function oneCall(meta: Metadata, step: ImageStep): boolean {
  if (!['jpeg', 'png', 'webp'].includes(meta.format ?? '')) return false;
  if (meta.channels !== 3 || meta.hasAlpha || meta.depth !== 'uchar' || meta.space !== 'srgb' || (meta.pages ?? 1) !== 1) return false;
  // An EXIF-oriented file: sharp would resize before turning it, which gives other pixels.
  if ((meta.orientation ?? 1) !== 1) return false;
  return oneCallStep(step);
}

const oneCallStep = (step: ImageStep) => !(step.resize?.mode === 'fixed-height' && step.centerCrop);

async function shapeInOneCall(file: Buffer, width: number, height: number, step: ImageStep, maxPixels: number): Promise<Pixels> {
  const plan = planOf(width, height, step);
  try {
    // A pipeline colourspace keeps sharp from shrinking JPEG and WebP while decoding (which
    // fastShrinkOnLoad: false only limits): decoded whole, then resized, as a script would.
    // Random access, as from decoded pixels in memory: a sequential read letterboxes some sizes one
    // level off at the picture's last row.
    let img = sharp(file, { limitInputPixels: maxPixels, failOn: 'error', sequentialRead: false }).pipelineColourspace('srgb');
    if (plan.resize) img = img.resize(plan.resize.width, plan.resize.height, resizeOf(plan.resize));
    if (plan.extend) img = img.extend({ right: plan.extend.right, background: { r: plan.extend.pad, g: plan.extend.pad, b: plan.extend.pad } });
    if (plan.crop) img = img.extract(plan.crop);
    const out = await img.raw().toBuffer({ resolveWithObject: true });
    if (out.info.channels !== 3) throw new FileError(`the image decodes to ${out.info.channels} channels, not 3`);
    return { data: out.data, width: out.info.width, height: out.info.height };
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw new FileError(`the file does not decode as an image (${(e as Error).message})`);
  }
}

/** Decoded pixels resized and centre-cropped as the step declares. */
async function shapePixels(decoded: Pixels, step: ImageStep): Promise<Pixels> {
  let px = decoded;
  const plan = planOf(px.width, px.height, step);
  try {
    const next = async (f: (img: Sharp) => Sharp) => {
      const out = await f(sharp(px.data, { raw: { width: px.width, height: px.height, channels: 3 } }))
        .raw()
        .toBuffer({ resolveWithObject: true });
      px = { data: out.data, width: out.info.width, height: out.info.height };
    };
    const { resize, extend, crop } = plan;
    if (resize) await next((img) => img.resize(resize.width, resize.height, resizeOf(resize)));
    if (extend) await next((img) => img.extend({ right: extend.right, background: { r: extend.pad, g: extend.pad, b: extend.pad } }));
    if (crop) await next((img) => img.extract(crop));
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
  const d = px.data;
  for (let c = 0; c < 3; c++) {
    const src = order[c]!;
    const m = mul[c]!;
    const a = add[c]!;
    if (step.layout === 'nchw') for (let i = 0, o = offset + c * hw; i < hw; i++) dst[o + i] = d[i * 3 + src]! * m + a;
    else for (let i = 0, o = offset + c; i < hw; i++) dst[o + i * 3] = d[i * 3 + src]! * m + a;
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

// The size of the usual picture read from its first bytes, without a sharp call (each costs its
// process's main thread a few hundred microseconds besides the work): a baseline or progressive JPEG
// of 8-bit YCbCr/RGB (3 components) with its EXIF orientation, or a PNG of 8-bit RGB without
// transparency or EXIF. Anything else, or any doubt, answers undefined and sharp reads the header.

export interface RgbHeader {
  format: 'jpeg' | 'png';
  width: number;
  height: number;
  /** EXIF orientation, 1 (upright) when none is given. */
  orientation: number;
}

/** Markers are scanned no further than this many segments. */
const MAX_SEGMENTS = 64;

export function rgbHeader(f: Buffer): RgbHeader | undefined {
  if (f.length >= 4 && f[0] === 0xff && f[1] === 0xd8) return jpegHeader(f);
  if (f.length >= 33 && f.readUInt32BE(0) === 0x89504e47 && f.readUInt32BE(4) === 0x0d0a1a0a) return pngHeader(f);
  return undefined;
}

const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegHeader(f: Buffer): RgbHeader | undefined {
  let pos = 2;
  let orientation: number | undefined;
  for (let n = 0; n < MAX_SEGMENTS; n++) {
    if (pos + 4 > f.length || f[pos] !== 0xff) return undefined;
    while (f[pos + 1] === 0xff && pos + 5 < f.length) pos++; // fill bytes
    const m = f[pos + 1]!;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      pos += 2;
      continue;
    }
    if (m === 0xd9 || m === 0xda) return undefined; // the image data before a frame header
    const len = f.readUInt16BE(pos + 2);
    const start = pos + 4;
    const end = pos + 2 + len;
    if (len < 2 || end > f.length) return undefined;
    if (m === 0xe1 && orientation === undefined && end - start >= 6 && f.toString('latin1', start, start + 6) === 'Exif\0\0') {
      orientation = exifOrientation(f.subarray(start + 6, end));
      if (orientation === undefined) return undefined;
    } else if (SOF.has(m)) {
      if (end - start < 6 || f[start] !== 8 || f[start + 5] !== 3) return undefined;
      const height = f.readUInt16BE(start + 1);
      const width = f.readUInt16BE(start + 3);
      if (!width || !height) return undefined;
      return { format: 'jpeg', width, height, orientation: orientation ?? 1 };
    }
    pos = end;
  }
  return undefined;
}

/** IFD0's orientation tag (0x0112) of a TIFF block; 1 without one; undefined when it does not read. */
function exifOrientation(t: Buffer): number | undefined {
  if (t.length < 8) return undefined;
  const le = t.toString('latin1', 0, 2) === 'II';
  if (!le && t.toString('latin1', 0, 2) !== 'MM') return undefined;
  const u16 = (o: number) => (le ? t.readUInt16LE(o) : t.readUInt16BE(o));
  const u32 = (o: number) => (le ? t.readUInt32LE(o) : t.readUInt32BE(o));
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd + 2 > t.length) return undefined;
  const count = u16(ifd);
  if (ifd + 2 + count * 12 > t.length) return undefined;
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    if (u16(e) !== 0x0112) continue;
    if (u16(e + 2) !== 3 || u32(e + 4) !== 1) return undefined; // one SHORT
    const v = u16(e + 8);
    return v >= 1 && v <= 8 ? v : undefined;
  }
  return 1;
}

function pngHeader(f: Buffer): RgbHeader | undefined {
  if (f.readUInt32BE(8) !== 13 || f.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  const width = f.readUInt32BE(16);
  const height = f.readUInt32BE(20);
  // 8 bits per sample, colour type 2 (RGB), no interlace oddities to care about.
  if (!width || !height || f[24] !== 8 || f[25] !== 2) return undefined;
  let pos = 33;
  for (let n = 0; n < MAX_SEGMENTS; n++) {
    if (pos + 8 > f.length) return undefined;
    const type = f.toString('latin1', pos + 4, pos + 8);
    if (type === 'IDAT') return { format: 'png', width, height, orientation: 1 };
    // Transparency gives an alpha channel; EXIF may turn it; an animation has frames.
    if (type === 'tRNS' || type === 'eXIf' || type === 'acTL' || type === 'IEND') return undefined;
    pos += 12 + f.readUInt32BE(pos);
  }
  return undefined;
}

// WAV files -> an audio input tensor FP32 [n, length]: PCM 16 or 32 bit or float 32, channels
// averaged to mono, resampled to the model's rate by linear interpolation, padded with silence or
// cut. Every size read from the file is checked against the bytes present before it is used.
import { melFrames, type AudioStep } from '../../core/processing/spec.ts';
import type { RawTensor } from '../../core/tensors.ts';
import { FileError } from './image.ts';

interface Wav {
  rate: number;
  channels: number;
  /** Frames (one sample per channel each). */
  frames: number;
  sample: (frame: number, channel: number) => number;
}

export function parseWav(buf: Buffer): Wav {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE')
    throw new FileError('the file does not decode as WAV (no RIFF/WAVE header)');
  let fmt: { format: number; channels: number; rate: number; bits: number } | undefined;
  for (let at = 12; at + 8 <= buf.length;) {
    const id = buf.toString('latin1', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    const body = at + 8;
    const end = Math.min(buf.length, body + size);
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > buf.length) throw new FileError('the WAV format chunk is cut short');
      let format = buf.readUInt16LE(body);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the subformat GUID.
      if (format === 0xfffe && size >= 40 && body + 26 <= buf.length) format = buf.readUInt16LE(body + 24);
      fmt = { format, channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!fmt) throw new FileError('the WAV data comes before its format');
      const { format, channels, rate, bits } = fmt;
      const pcm16 = format === 1 && bits === 16;
      const pcm32 = format === 1 && bits === 32;
      const f32 = format === 3 && bits === 32;
      if (!pcm16 && !pcm32 && !f32) throw new FileError(`WAV format ${format} with ${bits} bits is not read (PCM 16 or 32 bit, float 32)`);
      if (channels < 1 || channels > 64 || rate < 1) throw new FileError(`the WAV header says ${channels} channels at ${rate} Hz`);
      const width = bits / 8;
      const frames = Math.floor((end - body) / (width * channels));
      const read = pcm16
        ? (o: number) => buf.readInt16LE(o) / 32768
        : pcm32
          ? (o: number) => buf.readInt32LE(o) / 2147483648
          : (o: number) => buf.readFloatLE(o);
      return { rate, channels, frames, sample: (f, c) => read(body + (f * channels + c) * width) };
    }
    at = body + size + (size & 1); // chunks are padded to even sizes
  }
  throw new FileError('the WAV file has no data chunk');
}

/** The step's `length` mono samples at its rate. */
export function wavSamples(buf: Buffer, step: AudioStep): Float32Array {
  const w = parseWav(buf);
  const mono = (f: number) => {
    let s = 0;
    for (let c = 0; c < w.channels; c++) s += w.sample(f, c);
    return s / w.channels;
  };
  const out = new Float32Array(step.length);
  const ratio = w.rate / step.sampleRate;
  for (let i = 0; i < step.length; i++) {
    const t = i * ratio;
    const f = Math.floor(t);
    if (f >= w.frames) break; // silence after the end
    const frac = t - f;
    out[i] = frac === 0 || f + 1 >= w.frames ? mono(f) : mono(f) * (1 - frac) + mono(f + 1) * frac;
  }
  return out;
}

export function audioTensor(files: Buffer[], step: AudioStep): RawTensor {
  const per = step.logMel ? step.logMel.nMels * melFrames(step) : step.length;
  const out = new Float32Array(files.length * per);
  files.forEach((f, i) => {
    let samples: Float32Array;
    try {
      samples = wavSamples(f, step);
    } catch (e) {
      throw new FileError(files.length > 1 ? `file ${i}: ${(e as Error).message}` : (e as Error).message);
    }
    if (step.logMel) logMel(samples, step, out, i * per);
    else out.set(samples, i * per);
  });
  const dims = step.logMel ? [files.length, step.logMel.nMels, melFrames(step)] : [files.length, step.length];
  return { type: 'float32', dims, data: out };
}

/** In-place radix-2 FFT of re/im (length a power of two). */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const [wr, wi] = [Math.cos(ang * k), Math.sin(ang * k)];
        const [a, b] = [i + k, i + k + len / 2];
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a] = re[a]! + xr;
        im[a] = im[a]! + xi;
      }
    }
  }
}

const hzToMel = (f: number) => 2595 * Math.log10(1 + f / 700);
const melToHz = (m: number) => 700 * (10 ** (m / 2595) - 1);

/** Triangular filters on the HTK mel scale, unnormalised: nMels rows of nFft/2+1 weights. */
export function melFilters(nMels: number, nFft: number, rate: number, fMin: number, fMax: number): Float64Array[] {
  const bins = nFft / 2 + 1;
  const [lo, hi] = [hzToMel(fMin), hzToMel(fMax)];
  const edges = Array.from({ length: nMels + 2 }, (_, i) => melToHz(lo + ((hi - lo) * i) / (nMels + 1)));
  return Array.from({ length: nMels }, (_, m) => {
    const [left, centre, right] = [edges[m]!, edges[m + 1]!, edges[m + 2]!];
    const w = new Float64Array(bins);
    for (let k = 0; k < bins; k++) {
      const f = (k * rate) / nFft;
      w[k] = Math.max(0, Math.min((f - left) / (centre - left), (right - f) / (right - centre)));
    }
    return w;
  });
}

/** ln(mel power + floor) of the samples: a periodic Hann window, |FFT|^2, the mel filters; [nMels, frames] row-major into `dst`. */
export function logMel(samples: Float32Array, step: AudioStep, dst: Float32Array, offset: number): void {
  const m = step.logMel!;
  const frames = melFrames(step);
  const filters = melFilters(m.nMels, m.nFft, step.sampleRate, m.fMin, m.fMax ?? step.sampleRate / 2);
  const win = Float64Array.from({ length: m.nFft }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / m.nFft));
  const re = new Float64Array(m.nFft);
  const im = new Float64Array(m.nFft);
  const power = new Float64Array(m.nFft / 2 + 1);
  for (let t = 0; t < frames; t++) {
    for (let i = 0; i < m.nFft; i++) [re[i], im[i]] = [samples[t * m.hop + i]! * win[i]!, 0];
    fft(re, im);
    for (let k = 0; k < power.length; k++) power[k] = re[k]! * re[k]! + im[k]! * im[k]!;
    filters.forEach((w, j) => {
      let e = 0;
      for (let k = 0; k < power.length; k++) e += w[k]! * power[k]!;
      dst[offset + j * frames + t] = Math.log(e + m.floor);
    });
  }
}

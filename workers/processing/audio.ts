// WAV files -> an audio input tensor FP32 [n, length]: PCM 16 or 32 bit or float 32, channels
// averaged to mono, resampled to the model's rate by linear interpolation, padded with silence or
// cut. Every size read from the file is checked against the bytes present before it is used.
import type { AudioStep } from '../../core/processing/spec.ts';
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
  const out = new Float32Array(files.length * step.length);
  files.forEach((f, i) => {
    try {
      out.set(wavSamples(f, step), i * step.length);
    } catch (e) {
      throw new FileError(files.length > 1 ? `file ${i}: ${(e as Error).message}` : (e as Error).message);
    }
  });
  return { type: 'float32', dims: [files.length, step.length], data: out };
}

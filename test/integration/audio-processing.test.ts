// A model with declared audio processing: WAV files made by the test (tones and noise; PCM 16 and 32
// bit, float 32; mono and stereo; the model's rate and twice it; shorter and longer than the model's
// length) give, online and in a ZIP batch, the outputs of a direct onnxruntime run of the samples
// computed here (mono average, every other frame at twice the rate, silence after the end, cut at
// the length), within 1e-4; a file that is no WAV is one error row naming it.
import { zipSync } from 'fflate';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildModel, floatTensor, node } from '../../workers/onnx/builder.ts';
import { DT } from '../../workers/onnx/proto.ts';
import { directRun } from '../fixtures/models.ts';
import { noise, stored, tone, wav, type WavKind } from '../fixtures/sounds.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const RATE = 8000;
const LENGTH = 1600;
const model = buildModel({
  inputs: [{ name: 'wave', elemType: DT.FLOAT, shape: ['n', LENGTH] }],
  outputs: [{ name: 'scores', elemType: DT.FLOAT, shape: ['n', 4] }],
  nodes: [node('MatMul', ['wave', 'W'], ['scores'])],
  initializers: [floatTensor('W', [LENGTH, 4], noise(LENGTH * 4, 3, 0.05))],
});

interface Sound {
  name: string;
  file: Buffer;
  /** The samples the model should see. */
  want: Float32Array;
}

/** A sound of `frames` frames per channel at `rate`, as the file and as the model should see it. */
function sound(name: string, channels: Float32Array[], rate: number, kind: WavKind): Sound {
  const frames = channels[0]!.length;
  const inter = new Float32Array(frames * channels.length);
  for (let f = 0; f < frames; f++) channels.forEach((c, k) => (inter[f * channels.length + k] = c[f]!));
  const step = rate / RATE; // 1 or 2: frames picked exactly
  const want = new Float32Array(LENGTH);
  for (let i = 0; i < LENGTH && i * step < frames; i++) want[i] = channels.reduce((s, c) => s + stored(c[i * step]!, kind), 0) / channels.length;
  return { name, file: wav(inter, channels.length, rate, kind), want };
}

const SOUNDS = [
  sound('short-tone.wav', [tone(800, 440, RATE)], RATE, 'pcm16'),
  sound('stereo-noise.wav', [noise(4000, 7), tone(4000, 1000, 2 * RATE)], 2 * RATE, 'float32'),
  sound('long-tone.wav', [tone(2500, 220, RATE, 0.8)], RATE, 'pcm32'),
];

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  const up = await fetch(`${p.url}/v1/models/ears/versions`, {
    method: 'POST',
    body: Buffer.from(model),
    headers: {
      'content-type': 'application/octet-stream',
      'modelq-processing': JSON.stringify({
        inputs: [{ type: 'audio', input: 'wave', sampleRate: RATE, length: LENGTH }],
        post: { output: 'scores', argmax: true },
        labels: ['a', 'b', 'c', 'd'],
      }),
    },
  });
  expect(up.status).toBe(201);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

async function expected(sounds: Sound[]): Promise<Float32Array> {
  const x = new Float32Array(sounds.length * LENGTH);
  sounds.forEach((s, i) => x.set(s.want, i * LENGTH));
  return (await directRun(model, { wave: { data: x, dims: [sounds.length, LENGTH] } })).scores!;
}

const close = (got: number[], want: ArrayLike<number>) => got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThan(1e-4));

it('online: :predict with WAV files equals the direct run of the expected samples', async () => {
  const want = await expected(SOUNDS);
  const res = await fetch(`${p.url}/v1/models/ears:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: SOUNDS.map((s) => ({ b64: s.file.toString('base64') })) }),
  });
  expect(res.status).toBe(200);
  const { predictions } = (await res.json()) as { predictions: { scores: number[]; label: string }[] };
  predictions.forEach((pr, i) => close(pr.scores, want.subarray(i * 4, (i + 1) * 4)));
  expect(predictions.every((pr) => ['a', 'b', 'c', 'd'].includes(pr.label))).toBe(true);
});

it('a ZIP batch of WAV files: rows named by file, equal to the direct run; a file that is no WAV is one error row', async () => {
  const zip = zipSync({
    [SOUNDS[0]!.name]: SOUNDS[0]!.file,
    'not-a-sound.wav': new Uint8Array(Buffer.from('RIFF....WAVEjunk')),
    [SOUNDS[1]!.name]: SOUNDS[1]!.file,
    [SOUNDS[2]!.name]: SOUNDS[2]!.file,
  });
  const res = await fetch(`${p.url}/v1/batches?model=ears`, { method: 'POST', body: Buffer.from(zip), headers: { 'content-type': 'application/zip' } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const done = await until(
    async () => {
      const v = (await (await fetch(`${p.url}/v1/batches/${id}`)).json()) as { status: string };
      return ['completed', 'failed'].includes(v.status) ? v : null;
    },
    `batch ${id}`,
    120_000,
  );
  expect(done.status).toBe('completed');
  const read = async (kind: string) =>
    (await (await fetch(`${p.url}/v1/batches/${id}/${kind}`)).text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; outputs?: { scores: number[] }; error?: { message: string } });
  const out = await read('output');
  expect(out.map((o) => o.id)).toEqual(SOUNDS.map((s) => s.name));
  const want = await expected(SOUNDS);
  out.forEach((o, i) => close(o.outputs!.scores, want.subarray(i * 4, (i + 1) * 4)));
  const errors = await read('errors');
  expect(errors.map((e) => e.id)).toEqual(['not-a-sound.wav']);
  expect(errors[0]!.error!.message).toMatch(/not-a-sound\.wav.*no data chunk|not-a-sound\.wav.*WAV/);
});

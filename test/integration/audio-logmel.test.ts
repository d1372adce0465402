// Log-mel features of WAV files (an audio step with logMel): the features the worker computes equal a
// reference computed here by numpy (/usr/bin/python3: np.fft.rfft of Hann-windowed frames, HTK mel
// triangles, natural log) within 1e-3, online and in a ZIP batch; and the scores of a model on them
// equal a direct onnxruntime run of the reference features.
import { execFile } from 'node:child_process';
import { zipSync } from 'fflate';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildModel, floatTensor, int64Tensor, node } from '../../workers/onnx/builder.ts';
import { DT } from '../../workers/onnx/proto.ts';
import { directRun } from '../fixtures/models.ts';
import { noise, stored, tone, wav } from '../fixtures/sounds.ts';
import { startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const RATE = 8000;
const LENGTH = 1600;
const MEL = { nMels: 20, nFft: 256, hop: 128, fMin: 50, fMax: 3800 };
const FRAMES = 1 + Math.floor((LENGTH - MEL.nFft) / MEL.hop);
const PER = MEL.nMels * FRAMES;

const model = buildModel({
  inputs: [{ name: 'mel', elemType: DT.FLOAT, shape: ['n', MEL.nMels, FRAMES] }],
  outputs: [
    { name: 'features', elemType: DT.FLOAT, shape: ['n', MEL.nMels, FRAMES] },
    { name: 'scores', elemType: DT.FLOAT, shape: ['n', 4] },
  ],
  nodes: [node('Identity', ['mel'], ['features']), node('Reshape', ['mel', 'flat'], ['rows']), node('MatMul', ['rows', 'W'], ['scores'])],
  initializers: [int64Tensor('flat', [2], [-1, PER]), floatTensor('W', [PER, 4], noise(PER * 4, 5, 0.01))],
});

const SOUNDS = [
  { name: 'tone.wav', samples: tone(LENGTH, 440, RATE), kind: 'pcm16' as const },
  { name: 'noise.wav', samples: noise(1200, 9), kind: 'float32' as const }, // shorter: silence after
  { name: 'chord.wav', samples: tone(2000, 1200, RATE, 0.3).map((x, i) => x + 0.2 * Math.sin((2 * Math.PI * 300 * i) / RATE)), kind: 'pcm32' as const },
].map((s) => {
  const want = new Float64Array(LENGTH);
  for (let i = 0; i < Math.min(LENGTH, s.samples.length); i++) want[i] = stored(s.samples[i]!, s.kind);
  return { name: s.name, file: wav(s.samples, 1, RATE, s.kind), want };
});

const NUMPY = `
import json, sys
import numpy as np
a = json.load(sys.stdin)
rate, nfft, hop, nmels, fmin, fmax = a['rate'], a['nFft'], a['hop'], a['nMels'], a['fMin'], a['fMax']
mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)
hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
pts = hz(np.linspace(mel(fmin), mel(fmax), nmels + 2))
freqs = np.arange(nfft // 2 + 1) * rate / nfft
up = (freqs[None, :] - pts[:-2, None]) / (pts[1:-1] - pts[:-2])[:, None]
down = (pts[2:, None] - freqs[None, :]) / (pts[2:] - pts[1:-1])[:, None]
fb = np.maximum(0.0, np.minimum(up, down))
win = np.hanning(nfft + 1)[:-1]
out = []
for x in a['sounds']:
    x = np.asarray(x)
    frames = 1 + (len(x) - nfft) // hop
    spec = np.stack([np.abs(np.fft.rfft(x[t * hop:t * hop + nfft] * win)) ** 2 for t in range(frames)], axis=1)
    out.append(np.log(fb @ spec + 1e-10).ravel().tolist())
json.dump(out, sys.stdout)
`;

function reference(): Promise<Float32Array> {
  return new Promise((resolve, reject) => {
    const child = execFile('/usr/bin/python3', ['-c', NUMPY], { timeout: 60_000, maxBuffer: 64 << 20 }, (err, out, stderr) => {
      if (err) return reject(new Error(stderr || err.message));
      resolve(Float32Array.from((JSON.parse(out) as number[][]).flat()));
    });
    child.stdin!.end(JSON.stringify({ rate: RATE, ...MEL, sounds: SOUNDS.map((s) => Array.from(s.want)) }));
  });
}

let p: TestPlatform;
let ref: Float32Array;
beforeAll(async () => {
  ref = await reference();
  p = await startPlatform({ workers: 1 });
  const up = await fetch(`${p.url}/v1/models/mels/versions`, {
    method: 'POST',
    body: Buffer.from(model),
    headers: {
      'content-type': 'application/octet-stream',
      'modelq-processing': JSON.stringify({ inputs: [{ type: 'audio', input: 'mel', sampleRate: RATE, length: LENGTH, logMel: MEL }] }),
    },
  });
  expect(up.status).toBe(201);
}, 120_000);
afterAll(async () => {
  await p?.stop();
});

const close = (got: number[], want: ArrayLike<number>, tol: number) => {
  expect(got).toHaveLength(want.length);
  got.forEach((g, i) => expect(Math.abs(g - want[i]!)).toBeLessThan(tol));
};

it('a model input of the wrong shape for the features is refused when declared', async () => {
  const res = await fetch(`${p.url}/v1/models/mels/versions/1/processing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ type: 'audio', input: 'mel', sampleRate: RATE, length: LENGTH, logMel: { ...MEL, nMels: 40 } }] }),
  });
  expect(res.status).toBe(400);
  expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/log-mel gives FP32 \[n,40,11\]/);
});

it("online: the log-mel features equal numpy's, and the scores a direct run of them", async () => {
  const res = await fetch(`${p.url}/v1/models/mels:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: SOUNDS.map((s) => ({ b64: s.file.toString('base64') })) }),
  });
  expect(res.status).toBe(200);
  const { predictions } = (await res.json()) as { predictions: { features: number[][]; scores: number[] }[] };
  const want = (await directRun(model, { mel: { data: ref, dims: [SOUNDS.length, MEL.nMels, FRAMES] } })).scores!;
  predictions.forEach((pr, i) => {
    close(pr.features.flat(), ref.subarray(i * PER, (i + 1) * PER), 1e-3);
    close(pr.scores, want.subarray(i * 4, (i + 1) * 4), 1e-3);
  });
}, 60_000);

it('a ZIP batch of WAV files gives the same features and scores, rows named by file; a broken file is one error row', async () => {
  const zip = zipSync({
    [SOUNDS[0]!.name]: SOUNDS[0]!.file,
    [SOUNDS[1]!.name]: SOUNDS[1]!.file,
    'broken.wav': new Uint8Array(Buffer.from('RIFF\x10\x00\x00\x00WAVEfmt ')),
    [SOUNDS[2]!.name]: SOUNDS[2]!.file,
  });
  const res = await fetch(`${p.url}/v1/batches?model=mels`, { method: 'POST', body: Buffer.from(zip), headers: { 'content-type': 'application/zip' } });
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
      .map((l) => JSON.parse(l) as { id: string; outputs?: { features: number[][]; scores: number[] }; error?: { message: string } });
  const out = await read('output');
  expect(out.map((o) => o.id)).toEqual(SOUNDS.map((s) => s.name));
  const want = (await directRun(model, { mel: { data: ref, dims: [SOUNDS.length, MEL.nMels, FRAMES] } })).scores!;
  out.forEach((o, i) => {
    close(o.outputs!.features.flat(), ref.subarray(i * PER, (i + 1) * PER), 1e-3);
    close(o.outputs!.scores, want.subarray(i * 4, (i + 1) * 4), 1e-3);
  });
  const errors = await read('errors');
  expect(errors.map((e) => e.id)).toEqual(['broken.wav']);
  expect(errors[0]!.error!.message).toMatch(/broken\.wav/);
}, 180_000);

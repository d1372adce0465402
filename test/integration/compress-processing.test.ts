// Compression of a model with declared processing works on the tensor model underneath and keeps
// the processing: the int8 child of a CNN that takes image files has the same declaration and
// takes the same files, answering labels; its outputs stay near the parent's.
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { keyPrefix } from '../../core/config.ts';
import { convNet } from '../fixtures/models.ts';
import { draw, type Drawing } from '../fixtures/images.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';

const PROCESSING = {
  inputs: [
    {
      type: 'image',
      input: 'image',
      resize: { mode: 'shorter-side', size: 20 },
      centerCrop: { width: 16, height: 16 },
      normalize: { scale: 1 / 255, offset: 0 },
    },
  ],
  post: { output: 'logits', softmax: true, argmax: true },
  labels: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
};
const RED_CIRCLE: Drawing = { width: 37, height: 23, background: [20, 40, 200], circle: [12, 11, 8, '#ff2020'] };

let p: TestPlatform;
let events: QueueEvents;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  events = new QueueEvents('compress', { connection: p.redis.duplicate({ maxRetriesPerRequest: null }), prefix: keyPrefix(p.cfg) });
  await events.waitUntilReady();
  expect((await uploadModel(p.url, 'cnn', convNet(11))).status).toBe(201);
  const put = await fetch(`${p.url}/v1/models/cnn/versions/1/processing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(PROCESSING),
  });
  expect(put.status).toBe(200);
}, 120_000);
afterAll(async () => {
  await events?.close();
  await p?.stop();
});

it('the int8 child keeps the processing and takes the same files', async () => {
  const res = await postJson(`${p.url}/v1/jobs/compress`, { model: 'cnn@1', method: 'quantize-int8', registerAs: 'cnn-int8', allowSlower: true });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const job = (await p.deps.queues.queue('compress').getJob(id))!;
  const result = (await job.waitUntilFinished(events, 180_000)) as { model: { name: string; version: number } };
  expect(result.model.name).toBe('cnn-int8');
  const parent = (await (await fetch(`${p.url}/v1/models/cnn/versions/1/processing`)).json()) as unknown;
  const child = (await (await fetch(`${p.url}/v1/models/cnn-int8/versions/${result.model.version}/processing`)).json()) as unknown;
  expect(child).toEqual(parent);

  const file = (await draw(RED_CIRCLE, 'png')).toString('base64');
  const ask = async (name: string) => {
    const r = await fetch(`${p.url}/v1/models/${name}:predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ b64: file }] }),
    });
    expect(r.status).toBe(200);
    return ((await r.json()) as { predictions: { probabilities: number[]; label: string }[] }).predictions[0]!;
  };
  const [a, b] = [await ask('cnn'), await ask('cnn-int8')];
  expect(PROCESSING.labels).toContain(b.label);
  b.probabilities.forEach((v, i) => expect(Math.abs(v - a.probabilities[i]!)).toBeLessThan(0.1));
}, 240_000);

// Weighted aliases on real requests: an alias split 90/10 over two versions is answered by both,
// each answer names its version (OIP model_version, the x-modelq-model-version header, gRPC trailing
// metadata) and equals that version's direct run; a route key or request id sticks to one version.
import { KeyRing } from '../../core/auth.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pickWeighted } from '../../core/routing.ts';
import { startGrpcServer, type RunningGrpcServer } from '../../producer/grpc/server.ts';
import { directRun, tinyMlp } from '../fixtures/models.ts';
import { inferenceClient, type InferenceClient } from '../helpers/grpc-client.ts';
import { postJson, startPlatform, uploadModel, type TestPlatform } from '../helpers/platform.ts';
import * as grpc from '@grpc/grpc-js';

const models = [tinyMlp(1), tinyMlp(2)];
const X = [0.5, -1, 2, 0.25];
let p: TestPlatform;
let expected: number[][];

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
  for (const m of models) expect((await uploadModel(p.url, 'split', m)).status).toBe(201);
  expected = await Promise.all(
    models.map(async (m) => [...(await directRun(m, { input: { data: Float32Array.from(X), dims: [1, 4] } })).output!].map((x) => Math.fround(x))),
  );
  const put = await fetch(`${p.url}/v1/models/split/aliases/prod`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      versions: [
        { version: 1, weight: 90 },
        { version: 2, weight: 10 },
      ],
    }),
  });
  expect(put.status).toBe(200);
  expect(await put.json()).toMatchObject({ alias: 'prod', version: 1, versions: [{ version: 1 }, { version: 2 }] });
});
afterAll(async () => {
  await p?.stop();
});

const body = (id?: string) => ({ ...(id ? { id } : {}), inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: X }] });
const infer = async (init: { key?: string; id?: string } = {}) => {
  const res = await postJson(`${p.url}/v2/models/split/versions/prod/infer`, body(init.id), {
    headers: { 'content-type': 'application/json', ...(init.key ? { 'x-modelq-route-key': init.key } : {}) },
  });
  expect(res.status).toBe(200);
  const json = (await res.json()) as { model_version: string; outputs: { data: number[] }[] };
  expect(res.headers.get('x-modelq-model-version')).toBe(json.model_version);
  const v = Number(json.model_version);
  expect(json.outputs[0]!.data.map((x) => Math.fround(x))).toEqual(expected[v - 1]);
  return v;
};
/** A key that the split sends to version `want` (1 or 2). */
const keyFor = (want: number) => {
  for (let i = 0; ; i++) if (pickWeighted([90, 10], `key-${i}`, 'split') === want - 1) return `key-${i}`;
};

describe('a weighted alias', () => {
  it('is answered by both versions over 300 requests, each answer naming its version', async () => {
    const counts = [0, 0];
    for (let round = 0; round < 15; round++) {
      const vs = await Promise.all(Array.from({ length: 20 }, () => infer()));
      for (const v of vs) counts[v - 1]!++;
    }
    expect(counts[0]! + counts[1]!).toBe(300);
    expect(counts[1]).toBeGreaterThan(0); // P(no version 2 in 300 at 10%) ~ 2e-14
    expect(counts[0]).toBeGreaterThan(counts[1]!);
  });

  it('sends one route key to one version, the one the routing function names', async () => {
    for (const want of [1, 2]) {
      const key = keyFor(want);
      const vs = await Promise.all(Array.from({ length: 15 }, () => infer({ key })));
      expect(new Set(vs)).toEqual(new Set([want]));
    }
  });

  it('routes by the request id when no route key is given', async () => {
    const id = keyFor(2);
    const vs = await Promise.all(Array.from({ length: 10 }, () => infer({ id })));
    expect(new Set(vs)).toEqual(new Set([2]));
  });

  it('names the version on KServe :predict', async () => {
    const res = await postJson(
      `${p.url}/v1/models/split/versions/prod:predict`,
      { instances: [X] },
      {
        headers: { 'content-type': 'application/json', 'x-modelq-route-key': keyFor(2) },
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-modelq-model-version')).toBe('2');
  });

  it('names the version in gRPC trailing metadata and in every ModelStreamInfer answer', async () => {
    const server: RunningGrpcServer = await startGrpcServer(p.deps, {
      port: 0,
      host: '127.0.0.1',
      keys: KeyRing.fromConfig({ MODELQ_API_KEYS: undefined, MODELQ_API_KEYS_FILE: undefined }),
    });
    const c: InferenceClient = inferenceClient(`127.0.0.1:${server.port}`);
    try {
      for (const want of [1, 2]) {
        const m = new grpc.Metadata();
        m.set('x-modelq-route-key', keyFor(want));
        const { response, trailer } = await c.callWithTrailer<{ model_version: string }>(
          'ModelInfer',
          { model_name: 'split', model_version: 'prod', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: X } }] },
          m,
        );
        expect(response.model_version).toBe(String(want));
        expect(trailer.get('x-modelq-model-version')[0]).toBe(String(want));
      }
      // ModelStreamInfer: each answer's model_version, the stream's route key choosing for all of them.
      for (const want of [1, 2]) {
        const m = new grpc.Metadata();
        m.set('x-modelq-route-key', keyFor(want));
        const s = c.stream('ModelStreamInfer', m);
        const got: string[] = [];
        const done = new Promise<void>((resolve, reject) => {
          s.on('data', (a: { error_message: string; infer_response: { model_version: string } }) => {
            if (a.error_message) reject(new Error(a.error_message));
            got.push(a.infer_response.model_version);
          });
          s.on('end', resolve);
          s.on('error', reject);
        });
        for (let i = 0; i < 3; i++)
          s.write({ model_name: 'split', model_version: 'prod', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], contents: { fp32_contents: X } }] });
        s.end();
        await done;
        expect(got).toEqual([String(want), String(want), String(want)]);
      }
    } finally {
      c.close();
      await server.close();
    }
  });

  it('is listed with its weights; a plain PUT makes it one version again', async () => {
    const m = (await (await fetch(`${p.url}/v1/models/split`)).json()) as { aliases: Record<string, number>; routes?: Record<string, unknown> };
    expect(m.aliases.prod).toBe(1);
    expect(m.routes?.prod).toEqual({
      versions: [
        { version: 1, weight: 90 },
        { version: 2, weight: 10 },
      ],
    });
    const bad = await fetch(`${p.url}/v1/models/split/aliases/prod`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        versions: [
          { version: 1, weight: 90 },
          { version: 2, weight: 20 },
        ],
      }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/add up to 100/);
    const missing = await fetch(`${p.url}/v1/models/split/aliases/prod`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        versions: [
          { version: 1, weight: 50 },
          { version: 9, weight: 50 },
        ],
      }),
    });
    expect(missing.status).toBe(404);
    const plain = await fetch(`${p.url}/v1/models/split/aliases/prod`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"version":2}',
    });
    expect(plain.status).toBe(200);
    const after = (await (await fetch(`${p.url}/v1/models/split`)).json()) as { aliases: Record<string, number>; routes?: Record<string, unknown> };
    expect(after.aliases.prod).toBe(2);
    expect(after.routes).toBeUndefined();
  });
});

// Model cards: a trained classifier's card carries held-out metrics that equal those recomputed
// here from its stored held-out predictions (and the accuracy the trainer recorded), in JSON and
// Markdown; an uploaded model's card says which fields the platform does not know.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VersionRecord } from '../../core/registry.ts';
import { tinyMlp } from '../fixtures/models.ts';
import { postJson, startPlatform, until, uploadModel, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
});
afterAll(async () => {
  await p?.stop();
});

/** 3 overlapping classes on two features, so the held-out predictions are not all right. */
function csv(n: number): string {
  const names = ['red', 'green', 'blue'];
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const lines = ['a,b,label'];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    lines.push(`${(c + rnd() * 1.4).toFixed(3)},${(c * 0.5 + rnd()).toFixed(3)},${names[c]}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('model cards', () => {
  it("a trained classifier's card metrics equal those recomputed from its held-out predictions", async () => {
    const up = await fetch(`${p.url}/v1/datasets?format=csv&name=colors`, { method: 'POST', body: csv(600), headers: { 'content-type': 'text/csv' } });
    expect(up.status).toBe(201);
    const ds = (await up.json()) as { id: string };
    const res = await postJson(`${p.url}/v1/jobs/train`, { dataset: ds.id, target: 'label', registerAs: 'colors', seed: 3, model: { type: 'linear' } });
    const accepted = (await res.json()) as { id: string };
    expect(res.status, JSON.stringify(accepted)).toBe(202);
    const job = await until(
      async () => {
        const j = (await (await fetch(`${p.url}/v1/jobs/${accepted.id}`)).json()) as { state: string; error?: unknown };
        return ['completed', 'failed'].includes(j.state) ? j : null;
      },
      'training',
      180_000,
    );
    expect(job.state, JSON.stringify(job.error)).toBe('completed');

    const v = (await (await fetch(`${p.url}/v1/models/colors/versions/1`)).json()) as VersionRecord;
    expect(v.heldout).toBeDefined();
    const h = JSON.parse((await p.deps.store.get(v.heldout!.key)).toString('utf8')) as { truth: number[]; predicted: number[] };
    const k = 3;
    const cm = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    h.truth.forEach((t, i) => cm[t]![h.predicted[i]!]!++);
    const right = cm.reduce((a, row, i) => a + row[i]!, 0);

    const card = (await (await fetch(`${p.url}/v1/models/colors/versions/1/card`)).json()) as {
      task: string;
      classes: string[];
      trainingData: { dataset: string; rows: number };
      metrics: {
        recorded: { accuracy: number; validationRows: number };
        heldout: { rows: number; accuracy: number; confusion: number[][]; perClass: { class: string; support: number; precision: number; recall: number }[] };
      };
      signature: { keyId: string };
      calibration: { unknown: string };
    };
    expect(card.task).toBe('classification');
    expect(card.trainingData).toMatchObject({ dataset: ds.id, rows: 600 });
    expect(card.metrics.heldout.rows).toBe(h.truth.length);
    expect(card.metrics.heldout.confusion).toEqual(cm);
    expect(card.metrics.heldout.accuracy).toBeCloseTo(right / h.truth.length, 12);
    expect(card.metrics.heldout.accuracy).toBeLessThan(1);
    // The same predictions the trainer scored itself with.
    expect(card.metrics.heldout.rows).toBe(card.metrics.recorded.validationRows);
    expect(card.metrics.heldout.accuracy).toBeCloseTo(card.metrics.recorded.accuracy, 9);
    for (let c = 0; c < k; c++) {
      const m = card.metrics.heldout.perClass[c]!;
      expect(m.class).toBe(card.classes[c]);
      expect(m.support).toBe(cm[c]!.reduce((a, b) => a + b, 0));
      expect(m.recall).toBeCloseTo(cm[c]![c]! / m.support, 12);
      expect(m.precision).toBeCloseTo(cm[c]![c]! / cm.reduce((a, row) => a + row[c]!, 0), 12);
    }
    expect(card.signature.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(card.calibration.unknown).toBeTruthy();

    const md = await fetch(`${p.url}/v1/models/colors/versions/1/card`, { headers: { accept: 'text/markdown' } });
    expect(md.headers.get('content-type')).toMatch(/text\/markdown/);
    const text = await md.text();
    expect(text).toContain('# colors version 1');
    expect(text).toContain(`| ${card.classes[0]} | ${card.metrics.heldout.perClass[0]!.support} |`);
    expect(await (await fetch(`${p.url}/v1/models/colors/versions/1/card?format=md`)).text()).toBe(text);
  });

  it("an uploaded model's card says what the platform does not know", async () => {
    expect((await uploadModel(p.url, 'plain', tinyMlp(2))).status).toBe(201);
    const card = (await (await fetch(`${p.url}/v1/models/plain/versions/1/card`)).json()) as Record<string, unknown> & { metrics: Record<string, unknown> };
    expect(card.task).toEqual({ unknown: expect.any(String) });
    expect(card.metrics.heldout).toEqual({ unknown: expect.any(String) });
    expect(card.trainingData).toEqual({ unknown: expect.any(String) });
    expect((await fetch(`${p.url}/v1/models/plain/versions/1/card?format=pdf`)).status).toBe(400);
    expect((await fetch(`${p.url}/v1/models/nope/versions/1/card`)).status).toBe(404);
  });
});

// Model cards: a trained classifier's card carries held-out metrics that equal those recomputed
// here from its stored held-out predictions (and the accuracy the trainer recorded), in JSON and
// Markdown, with calibration recomputed from the stored confidences and input importance from a
// stored explained batch; an uploaded model's card says which fields the platform does not know.
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
    const h = JSON.parse((await p.deps.store.get(v.heldout!.key)).toString('utf8')) as { truth: number[]; predicted: number[]; confidence: number[] };
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
      calibration: {
        rows: number;
        ece: number;
        mce: number;
        bins: { from: number; to: number; rows: number; confidence: number | null; accuracy: number | null }[];
      };
      importance: { unknown: string };
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
    // Calibration, recomputed here from the stored confidences: ten equal bins, ECE and the largest gap.
    expect(h.confidence).toHaveLength(h.truth.length);
    for (const c of h.confidence) expect(c).toBeGreaterThanOrEqual(1 / k - 1e-6); // the predicted class is the likeliest
    const bins = Array.from({ length: 10 }, () => ({ n: 0, conf: 0, right: 0 }));
    h.confidence.forEach((c, i) => {
      const b = bins[Math.min(9, Math.floor(c * 10))]!;
      b.n++;
      b.conf += c;
      if (h.truth[i] === h.predicted[i]) b.right++;
    });
    const gaps = bins.map((b) => (b.n ? Math.abs(b.right / b.n - b.conf / b.n) : 0));
    expect(card.calibration.rows).toBe(h.truth.length);
    expect(card.calibration.bins.map((b) => b.rows)).toEqual(bins.map((b) => b.n));
    card.calibration.bins.forEach((b, i) => {
      if (!bins[i]!.n) return expect(b.accuracy).toBeNull();
      expect(b.accuracy).toBeCloseTo(bins[i]!.right / bins[i]!.n, 12);
      expect(b.confidence).toBeCloseTo(bins[i]!.conf / bins[i]!.n, 12);
    });
    expect(card.calibration.ece).toBeCloseTo(
      bins.reduce((a, b, i) => a + (b.n / h.truth.length) * gaps[i]!, 0),
      12,
    );
    expect(card.calibration.mce).toBeCloseTo(Math.max(...gaps), 12);
    expect(card.calibration.ece).toBeGreaterThan(0);
    // No explanations stored yet.
    expect(card.importance.unknown).toMatch(/no explanations stored/);

    const md = await fetch(`${p.url}/v1/models/colors/versions/1/card`, { headers: { accept: 'text/markdown' } });
    expect(md.headers.get('content-type')).toMatch(/text\/markdown/);
    const text = await md.text();
    expect(text).toContain('# colors version 1');
    expect(text).toContain(`| ${card.classes[0]} | ${card.metrics.heldout.perClass[0]!.support} |`);
    expect(await (await fetch(`${p.url}/v1/models/colors/versions/1/card?format=md`)).text()).toBe(text);
    expect(text).toContain('## Calibration');
    expect(text).toContain(`expected calibration error ${card.calibration.ece.toFixed(4)}`);
  });

  it('global input importance is the mean |attribution| over the explained batches stored for the version', async () => {
    const rows = csv(30)
      .split('\n')
      .map((l) => l.split(',').slice(0, 2).join(','))
      .join('\n');
    const submit = await fetch(`${p.url}/v1/batches?model=colors@1&format=csv&explain=true&explainSamples=4`, {
      method: 'POST',
      body: rows,
      headers: { 'content-type': 'text/csv' },
    });
    const accepted = (await submit.json()) as { id: string };
    expect(submit.status, JSON.stringify(accepted)).toBe(202);
    const done = await until(
      async () => {
        const b = (await (await fetch(`${p.url}/v1/batches/${accepted.id}`)).json()) as { status: string; error?: string };
        return ['completed', 'failed', 'cancelled'].includes(b.status) ? b : null;
      },
      'explained batch',
      120_000,
    );
    expect(done.status, done.error).toBe('completed');
    const lines = (await (await fetch(`${p.url}/v1/batches/${accepted.id}/output`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { outputs: { attributions: number[] } });
    expect(lines).toHaveLength(30);
    const mean = [0, 1].map((i) => lines.reduce((a, l) => a + Math.abs(l.outputs.attributions[i]!), 0) / lines.length);
    const card = (await (await fetch(`${p.url}/v1/models/colors/versions/1/card`)).json()) as {
      importance: { rows: number; batches: string[]; inputs: { input: string; meanAbsAttribution: number }[] };
    };
    expect(card.importance.rows).toBe(30);
    expect(card.importance.batches).toEqual([accepted.id]);
    const byName = Object.fromEntries(card.importance.inputs.map((x) => [x.input, x.meanAbsAttribution]));
    expect(Object.keys(byName).sort()).toEqual(['a', 'b']);
    expect(byName.a).toBeCloseTo(mean[0]!, 6);
    expect(byName.b).toBeCloseTo(mean[1]!, 6);
    expect(byName.a! + byName.b!).toBeGreaterThan(0);
    // Sorted, most important first.
    expect(card.importance.inputs[0]!.meanAbsAttribution).toBeGreaterThanOrEqual(card.importance.inputs[1]!.meanAbsAttribution);
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

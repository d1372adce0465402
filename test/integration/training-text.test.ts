// Text models end to end on a real corpus: Debian package descriptions labelled with their archive
// section (test/fixtures/text/debian-sections.csv, made by make-debian-sections.ts from this
// machine's apt lists). The corpus is split 80/20 (stratified, scikit-learn's train_test_split,
// random_state 0); the platform trains with defaults on the training part through the HTTP API, and
// the downloaded model, run in onnxruntime on the raw test strings, is within one point of
// scikit-learn's TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True) + LogisticRegression on the
// same split; /v2 inference (BYTES in plain JSON) and JSONL and CSV batches of the test rows give the
// same labels. Also: the dataset profile (text with length statistics), the graph passing the official
// checker, odd strings (empty, accents, CJK, emoji) scored, and a job mixing numeric, category and
// text features with an integer target. Needs python3-sklearn for /usr/bin/python3 (.ci/run installs it).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../fixtures/models.ts';
import { onnxCheck } from '../helpers/onnx-checker.ts';
import { postJson, startPlatform, until, type TestPlatform } from '../helpers/platform.ts';

const PYTHON = '/usr/bin/python3';
const CORPUS = path.join(import.meta.dirname, '../fixtures/text/debian-sections.csv');

// Splits the corpus, writes train.csv and test.csv (test rows as JSON too, for exact strings), and
// prints scikit-learn's test accuracy and fit time.
const REFERENCE = `
import csv, json, sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
src, out = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(src, encoding='utf-8')))
tr, te = train_test_split(rows, test_size=0.2, stratify=[r['section'] for r in rows], random_state=0)
for name, part in [('train', tr), ('test', te)]:
    with open('%s/%s.csv' % (out, name), 'w', newline='', encoding='utf-8') as f:
        w = csv.DictWriter(f, fieldnames=['description', 'section']); w.writeheader(); w.writerows(part)
json.dump(te, open(out + '/test.json', 'w', encoding='utf-8'))
t = time.perf_counter()
v = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
m = LogisticRegression(max_iter=1000).fit(v.fit_transform([r['description'] for r in tr]), [r['section'] for r in tr])
fit = time.perf_counter() - t
acc = m.score(v.transform([r['description'] for r in te]), [r['section'] for r in te])
print(json.dumps({'accuracy': acc, 'fitSeconds': fit, 'train': len(tr), 'test': len(te)}))
`;

const ODD = [
  '',
  '   ',
  '!!! ... ???',
  'Éditeur de texte très rapide pour le courrier',
  '日本語のテキストエディタ',
  '🎮🎲 game 🎮',
  'İSTANBUL MAIL SERVER',
  'a',
];

let p: TestPlatform;
const dir = tmpDir('text-train');

const getJob = async (id: string) => (await fetch(`${p.url}/v1/jobs/${id}`)).json();
async function train(body: Record<string, unknown>) {
  const res = await postJson(`${p.url}/v1/jobs/train`, body);
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(202);
  return until(
    async () => {
      const j = await getJob(json.id);
      return ['completed', 'failed'].includes(j.state) ? j : null;
    },
    `job ${json.id}`,
    300_000,
  );
}
async function upload(body: string, name: string) {
  const res = await fetch(`${p.url}/v1/datasets?format=csv&name=${name}`, { method: 'POST', body, headers: { 'content-type': 'text/csv' } });
  const json = await res.json();
  expect(res.status, JSON.stringify(json)).toBe(201);
  return json;
}
const download = async (name: string, v = 1) => new Uint8Array(await (await fetch(`${p.url}/v1/models/${name}/versions/${v}/onnx`)).arrayBuffer());

beforeAll(async () => {
  p = await startPlatform({ workers: 1 });
});
afterAll(async () => {
  await p?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('text classification on a real corpus', () => {
  it('is within one point of scikit-learn TF-IDF + LogisticRegression, the graph takes raw strings, odd strings are scored', async () => {
    const sk = JSON.parse(execFileSync(PYTHON, ['-c', REFERENCE, CORPUS, dir], { encoding: 'utf8' })) as { accuracy: number; fitSeconds: number };
    const test = JSON.parse(fs.readFileSync(path.join(dir, 'test.json'), 'utf8')) as { description: string; section: string }[];

    const ds = await upload(fs.readFileSync(path.join(dir, 'train.csv'), 'utf8'), 'debian');
    const shown = await (await fetch(`${p.url}/v1/datasets/${ds.id}`)).json();
    expect(shown.columns).toEqual([
      { name: 'description', type: 'text' },
      { name: 'section', type: 'category' },
    ]);
    const len = shown.stats.find((s: { name: string }) => s.name === 'description').length;
    expect(len.chars.min).toBeGreaterThan(0);
    expect(len.tokens.p50).toBeGreaterThanOrEqual(3);
    expect(len.tokens.p95).toBeGreaterThanOrEqual(len.tokens.p50);
    expect(len.chars.max).toBeGreaterThanOrEqual(len.chars.p95);

    const job = await train({ dataset: ds.id, target: 'section', registerAs: 'sections', seed: 1 });
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.spec.hyperparameters).toMatchObject({
      features: ['description'],
      featureTypes: { description: 'text' },
      model: { type: 'linear' },
      text: { maxFeatures: 20000, minDf: 2, ngramRange: [1, 2], sublinearTf: true, lowercase: true, norm: 'l2' },
    });
    expect(job.progress.curve.length).toBe(job.result.epochsRun);

    const v = await (await fetch(`${p.url}/v1/models/sections/versions/1`)).json();
    const classes = [...new Set(test.map((r) => r.section))].sort();
    expect(v.metadata.classes).toEqual(classes);
    // A column-input model: the column's strings as [N, 1].
    expect(v.inputs).toEqual([{ name: 'description', datatype: 'BYTES', shape: [-1, 1] }]);
    expect(v.outputs).toEqual([
      { name: 'label', datatype: 'BYTES', shape: [-1] },
      { name: 'probabilities', datatype: 'FP32', shape: [-1, classes.length] },
    ]);

    const bytes = await download('sections');
    expect(await onnxCheck(bytes)).toBeNull();
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({
      description: new ort.Tensor(
        'string',
        test.map((r) => r.description),
        [test.length, 1],
      ),
    });
    const labels = out.label!.data as string[];
    const accuracy = labels.filter((l, i) => l === test[i]!.section).length / test.length;
    console.log(
      `debian sections (${classes.length} classes, ${test.length} test rows): modelq ${(100 * accuracy).toFixed(2)}%, scikit-learn ${(100 * sk.accuracy).toFixed(2)}%`,
    );
    expect(accuracy).toBeGreaterThanOrEqual(sk.accuracy - 0.01);

    // Strings that tokenize to nothing, accents, CJK, emoji, a Turkish dotted capital: scored like any other.
    const odd = await session.run({ description: new ort.Tensor('string', ODD, [ODD.length, 1]) });
    expect(odd.label!.dims).toEqual([ODD.length]);
    for (const l of odd.label!.data as string[]) expect(classes).toContain(l);
    const probs = odd.probabilities!.data as Float32Array;
    for (let i = 0; i < ODD.length; i++) {
      const row = probs.subarray(i * classes.length, (i + 1) * classes.length);
      expect(Math.abs(row.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
    }
    // Every string with no known word gets the same answer: the head's bias alone.
    expect(Array.from(probs.subarray(0, classes.length))).toEqual(Array.from(probs.subarray(classes.length, 2 * classes.length)));

    // The platform serves it: /v2 with BYTES inputs in plain JSON gives onnxruntime's labels, odd strings included.
    const rows = [...test.map((r) => r.description), ...ODD];
    const res = await postJson(`${p.url}/v2/models/sections/infer`, {
      inputs: [{ name: 'description', datatype: 'BYTES', shape: [rows.length, 1], data: rows }],
    });
    expect(res.status).toBe(200);
    const served = (await res.json()).outputs.find((o: { name: string }) => o.name === 'label');
    expect(served).toMatchObject({ datatype: 'BYTES', shape: [rows.length] });
    expect(served.data).toEqual([...labels, ...(odd.label!.data as string[])]);
    const numbers = await postJson(`${p.url}/v2/models/sections/infer`, { inputs: [{ name: 'description', datatype: 'BYTES', shape: [2, 1], data: [1, 2] }] });
    expect(numbers.status).toBe(400);
    expect((await numbers.json()).error).toMatch(/must be a string for datatype BYTES/);

    // And as batches: JSONL rows {"description": ...} and a CSV with the column named as the input.
    const q = (t: string) => `"${t.replace(/"/g, '""')}"`;
    const bodies: [string, string][] = [
      [rows.map((t, i) => JSON.stringify({ id: i, description: t })).join('\n'), 'application/x-ndjson'],
      [['id,description', ...rows.map((t, i) => `${i},${q(t)}`)].join('\n') + '\n', 'text/csv'],
    ];
    for (const [body, type] of bodies) {
      const sub = await fetch(`${p.url}/v1/batches?model=sections&chunkRows=300`, { method: 'POST', body, headers: { 'content-type': type } });
      expect(sub.status, await sub.clone().text()).toBe(202);
      const id = (await sub.json()).id;
      const done = await until(
        async () => {
          const b = await (await fetch(`${p.url}/v1/batches/${id}`)).json();
          return ['completed', 'failed', 'cancelled'].includes(b.status) ? b : null;
        },
        `batch ${id}`,
        120_000,
      );
      expect(done.requestCounts, type).toEqual({ total: rows.length, completed: rows.length, failed: 0 });
      const lines = (await (await fetch(`${p.url}/v1/batches/${id}/output`)).text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: unknown; outputs: { label: string[] } });
      expect(
        lines.map((l) => l.outputs.label[0]),
        type,
      ).toEqual(served.data);
    }
  }, 600_000);

  it('mixes numeric, category and text features with an integer target and an MLP head', async () => {
    // Deterministic rows where each kind of feature carries part of the rule: the class (10, 20 or 30)
    // is picked by the text's topic word unless the colour says "override", shifted by the number's sign.
    let s = 7;
    const r = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    const topics = [
      ['fast', 'editor', 'vim'],
      ['mail', 'server', 'smtp'],
      ['chess', 'game', 'puzzle'],
    ];
    const filler = ['with', 'plugins', 'for', 'the', 'desktop', 'and', 'terminal', 'Über', 'naïve', '日本'];
    const lines = ['x,color,note,klass'];
    for (let i = 0; i < 900; i++) {
      const t = Math.floor(((r() + 1) / 2) * 3) % 3;
      const x = r();
      const color = ['red', 'green', 'blue', 'override'][i % 4]!;
      const words = [topics[t]![i % 3]!, ...Array.from({ length: 3 }, (_, j) => filler[(i * 7 + j * 3) % filler.length]!)];
      const k = color === 'override' ? (x > 0 ? 2 : 0) : t;
      lines.push(`${x.toFixed(4)},${color},"${words.join(' ')}",${[10, 20, 30][k]}`);
    }
    const ds = await upload(lines.join('\n') + '\n', 'mixed');
    expect(ds.columns.map((c: { type: string }) => c.type)).toEqual(['number', 'category', 'text', 'integer']);
    const job = await train({
      dataset: ds.id,
      target: 'klass',
      model: { type: 'mlp', hidden: [16] },
      learningRate: 0.01,
      minDf: 1,
      seed: 2,
      registerAs: 'mixed',
    });
    expect(job.state, JSON.stringify(job.error)).toBe('completed');
    expect(job.spec.hyperparameters.featureTypes).toEqual({ x: 'numeric', color: 'category', note: 'text' });
    expect(job.result.metrics.accuracy).toBeGreaterThanOrEqual(0.9);

    const v = await (await fetch(`${p.url}/v1/models/mixed/versions/1`)).json();
    expect(v.metadata.classes).toEqual([10, 20, 30]);
    expect(v.inputs).toEqual([
      { name: 'x', datatype: 'FP32', shape: [-1, 1] },
      { name: 'color', datatype: 'BYTES', shape: [-1, 1] },
      { name: 'note', datatype: 'BYTES', shape: [-1, 1] },
    ]);
    const bytes = await download('mixed');
    expect(await onnxCheck(bytes)).toBeNull();
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({
      x: new ort.Tensor('float32', Float32Array.of(0.5, -0.5, 0.5, 0), [4, 1]),
      color: new ort.Tensor('string', ['red', 'override', 'override', 'purple'], [4, 1]),
      note: new ort.Tensor('string', ['a CHESS puzzle', 'mail', 'vim', ''], [4, 1]),
    });
    // The label is the class value itself (int64), not an index.
    expect(out.label!.type).toBe('int64');
    expect(Array.from(out.label!.data as BigInt64Array, Number).slice(0, 3)).toEqual([30, 10, 30]);
    expect([10, 20, 30]).toContain(Number((out.label!.data as BigInt64Array)[3]));
  }, 600_000);
});

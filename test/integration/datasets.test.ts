// Datasets over HTTP: CSV and JSONL uploads are stored and profiled; malformed files are 400s naming
// the line and leave nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPlatform, type TestPlatform } from '../helpers/platform.ts';

let p: TestPlatform;
beforeAll(async () => {
  p = await startPlatform({ workers: 0 });
});
afterAll(async () => {
  await p?.stop();
});

const upload = (body: string, query: string, type = 'text/csv') =>
  fetch(`${p.url}/v1/datasets?${query}`, { method: 'POST', body, headers: { 'content-type': type } });

describe('datasets', () => {
  it('stores a CSV file and infers its columns', async () => {
    const res = await upload('a,b,c\n1,2.5,x\n2,3,y\n3,-1,x\n', 'format=csv&name=small');
    expect(res.status).toBe(201);
    const d = await res.json();
    expect(d).toMatchObject({
      name: 'small',
      format: 'csv',
      rows: 3,
      columns: [
        { name: 'a', type: 'integer' },
        { name: 'b', type: 'number' },
        { name: 'c', type: 'category' },
      ],
    });
    expect(d.id).toMatch(/^ds_[0-9a-f]{20}$/);
    expect(d.key).toBeUndefined();
    expect(fs.readFileSync(path.join(p.cfg.MODELQ_DATA_DIR, 'datasets', d.id, 'data.csv'), 'utf8')).toBe('a,b,c\n1,2.5,x\n2,3,y\n3,-1,x\n');
    expect(await (await fetch(`${p.url}/v1/datasets/${d.id}`)).json()).toEqual(d);
  });

  it('stores a JSONL file (the default format for other content types)', async () => {
    const res = await upload('{"x":1.5,"label":"a"}\n{"x":2,"label":"b"}\n', 'name=j', 'application/x-ndjson');
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      format: 'jsonl',
      rows: 2,
      columns: [
        { name: 'x', type: 'number' },
        { name: 'label', type: 'category' },
      ],
    });
  });

  it('lists datasets newest first', async () => {
    const list = await (await fetch(`${p.url}/v1/datasets`)).json();
    expect(list.total).toBe(2);
    expect(list.data.map((d: { name: string }) => d.name)).toEqual(['j', 'small']);
  });

  it('rejects malformed files with a 400 naming the line, and keeps nothing', async () => {
    const ragged = await upload('a,b\n1,2\n3,4\n5\n', 'format=csv');
    expect(ragged.status).toBe(400);
    expect((await ragged.json()).error.message).toBe('line 4: has 1 fields, the header has 2');
    const json = await upload('{"a":1}\n{"a":\n', 'format=jsonl');
    expect(json.status).toBe(400);
    expect((await json.json()).error.message).toMatch(/^line 2: not valid JSON/);
    expect((await upload('', 'format=csv')).status).toBe(400);
    expect((await upload('a,b\n', 'format=csv')).status).toBe(400);
    expect((await upload('a', 'format=xml')).status).toBe(400);
    expect(fs.readdirSync(path.join(p.cfg.MODELQ_DATA_DIR, 'datasets'))).toHaveLength(2);
    expect((await (await fetch(`${p.url}/v1/datasets`)).json()).total).toBe(2);
  });

  it('answers 404 for an unknown dataset', async () => {
    expect((await fetch(`${p.url}/v1/datasets/ds_00000000000000000000`)).status).toBe(404);
    expect((await fetch(`${p.url}/v1/datasets/nope`)).status).toBe(404);
  });
});

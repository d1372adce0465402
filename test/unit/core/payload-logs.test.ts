// Payload log parts (core/payload-logs.ts): redaction by input, output and JSON key; the Parquet part
// round trip; keys partitioned by tenant/model/version/hour; listing and erasing a time range over a
// real filesystem store, parts that straddle the range rewritten without its records.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeLogPart,
  deleteLogRange,
  encodeLogPart,
  listLogParts,
  logPartKey,
  parseLogPartKey,
  readLogRecords,
  redactor,
  type PayloadRecord,
} from '../../../core/payload-logs.ts';
import { FsStore } from '../../../core/storage/index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mq-logs-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const rec = (time: number, i: number, version = 1): PayloadRecord => ({
  request_id: `r-${time}-${i}`,
  client_id: i % 2 ? `c${i}` : null,
  time,
  tenant: 'acme',
  key_id: 'k1',
  model: 'm',
  version,
  alias: 'latest',
  latency_ms: 1.5 + i,
  inputs: JSON.stringify([{ name: 'x', datatype: 'FP32', shape: [1, 2], data: [i, i + 0.5] }]),
  outputs: JSON.stringify([{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [i * 2] }]),
  error: null,
  truncated: false,
});

describe('redaction', () => {
  it('drops named inputs and outputs and JSON keys inside BYTES values', () => {
    const redact = redactor(['input.ssn', 'email', 'output.secret']);
    const inputs = redact(
      [
        { name: 'ssn', datatype: 'BYTES', shape: [1], data: ['123-45-6789'] },
        { name: 'email', datatype: 'BYTES', shape: [1], data: ['a@b.example'] },
        { name: 'doc', datatype: 'BYTES', shape: [3], data: ['{"email":"x@y.example","age":3,"n":{"email":"z@q.example"}}', 'email: w@v.example', 'plain'] },
        { name: 'f', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) as unknown as number[] },
      ],
      'input',
    );
    const text = JSON.stringify(inputs);
    for (const s of ['123-45-6789', 'a@b.example', 'x@y.example', 'z@q.example', 'w@v.example']) expect(text).not.toContain(s);
    expect(inputs.map((t) => t.name)).toEqual(['doc', 'f']);
    expect(JSON.parse(inputs[0]!.data[0] as string)).toEqual({ age: 3, n: {} });
    expect(inputs[0]!.data.slice(1)).toEqual(['[redacted]', 'plain']);
    expect(inputs[1]!.data).toEqual([1, 2]);
    const outputs = redact(
      [
        { name: 'secret', datatype: 'FP32', shape: [1], data: [7] },
        { name: 'ssn', datatype: 'FP32', shape: [1], data: [8] },
      ],
      'output',
    );
    // "input.ssn" is the input only; the output named ssn stays.
    expect(outputs.map((t) => t.name)).toEqual(['ssn']);
  });
});

describe('parts', () => {
  it('round-trips records through Parquet, both codecs', async () => {
    const rs = [rec(1_700_000_000_000, 0), rec(1_700_000_000_500, 1)];
    for (const codec of ['SNAPPY', 'UNCOMPRESSED'] as const) expect(await decodeLogPart(encodeLogPart(rs, codec))).toEqual(rs);
  });

  it('names parts by tenant, model, version, hour and record times', () => {
    const t = Date.UTC(2026, 11, 7, 19, 5);
    const k = logPartKey('acme', 'iris', 3, t, t + 1000);
    expect(k).toMatch(/^logs\/acme\/iris\/3\/2026-12-07T19\/part-\d+-\d+-[0-9a-f]{8}\.parquet$/);
    expect(parseLogPartKey(k, 9)).toMatchObject({ tenant: 'acme', model: 'iris', version: 3, hour: '2026-12-07T19', first: t, last: t + 1000, bytes: 9 });
    expect(parseLogPartKey('logs/acme/iris/3/x/part-1-2-ab.parquet')).toBeNull();
  });

  it('lists, reads and erases a time range; straddling parts are rewritten', async () => {
    const store = new FsStore(dir);
    const h = Date.UTC(2026, 11, 7, 10);
    const hour = 3_600_000;
    // Three hours of version 1, one part each of 4 records 10 minutes apart; one part of version 2.
    for (let k = 0; k < 3; k++) {
      const rs = Array.from({ length: 4 }, (_, i) => rec(h + k * hour + i * 600_000, i));
      await store.put(logPartKey('acme', 'm', 1, rs[0]!.time, rs[3]!.time), encodeLogPart(rs));
    }
    const v2 = [rec(h + 5 * 60_000, 0, 2)];
    await store.put(logPartKey('acme', 'm', 2, v2[0]!.time, v2[0]!.time), encodeLogPart(v2));
    await store.put(logPartKey('other', 'm', 1, h, h), encodeLogPart([rec(h, 0)]));

    expect(await listLogParts(store, { tenant: 'acme', model: 'm' })).toHaveLength(4);
    expect(await listLogParts(store, { tenant: 'acme', model: 'm', version: 1 })).toHaveLength(3);
    expect(await listLogParts(store, { tenant: 'acme', model: 'm' }, { from: h + hour, to: h + hour + 1 })).toHaveLength(1);

    const all: PayloadRecord[] = [];
    for await (const r of readLogRecords(store, { tenant: 'acme', model: 'm' }, { from: h, to: h + hour - 1 }, 100)) all.push(r);
    expect(all.map((r) => r.time)).toEqual([h, h + 5 * 60_000, h + 600_000, h + 1_200_000, h + 1_800_000]);
    const few: PayloadRecord[] = [];
    for await (const r of readLogRecords(store, { tenant: 'acme', model: 'm' }, {}, 3)) few.push(r);
    expect(few).toHaveLength(3);

    // Erase from the middle of hour 0 to the middle of hour 1, version 1: hour 0 and 1 straddle.
    const report = await deleteLogRange(store, { tenant: 'acme', model: 'm', version: 1 }, { from: h + 1_000_000, to: h + hour + 1_000_000 });
    expect(report.records).toBe(2 + 2);
    expect(report.deleted).toEqual([]);
    expect(report.rewritten).toHaveLength(2);
    const left: number[] = [];
    for await (const r of readLogRecords(store, { tenant: 'acme', model: 'm', version: 1 }, {}, 100)) left.push(r.time - h);
    expect(left).toEqual([0, 600_000, hour + 1_200_000, hour + 1_800_000, 2 * hour, 2 * hour + 600_000, 2 * hour + 1_200_000, 2 * hour + 1_800_000]);

    // A whole part inside the range is deleted; no range: everything of the scope.
    const whole = await deleteLogRange(store, { tenant: 'acme', model: 'm', version: 1 }, { from: h + 2 * hour, to: h + 3 * hour });
    expect(whole.deleted).toHaveLength(1);
    const rest = await deleteLogRange(store, { tenant: 'acme', model: 'm' });
    expect(rest.records).toBe(4 + 1);
    expect(await store.list('logs/acme/', 100)).toEqual([]);
    expect(await store.list('logs/other/', 100)).toHaveLength(1);
  });
});

// The producer's payload log buffer (producer/inference/payload-log.ts) over a real filesystem store:
// the buffer's bound drops and counts what does not fit, never waits; an oversized payload is logged
// without it; the alias's setting wins over the model's; flush writes every buffered record.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../core/logger.ts';
import { readLogRecords, type LoggingConfig, type LoggingConfigs, type PayloadRecord } from '../../../core/payload-logs.ts';
import type { VersionRecord } from '../../../core/registry.ts';
import { FsStore } from '../../../core/storage/index.ts';
import { PayloadLogger, type LoggedRequest, type PayloadLogConfig } from '../../../producer/inference/payload-log.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mq-payload-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Settings as Redis would answer them (the class under test only calls `all`). */
const settings = (m: Record<string, LoggingConfig>) => ({ all: async () => new Map(Object.entries(m)) }) as unknown as LoggingConfigs;

const cfg = (over: Partial<PayloadLogConfig> = {}): PayloadLogConfig => ({
  MODELQ_PAYLOAD_LOG_FLUSH_MS: 3_600_000,
  MODELQ_PAYLOAD_LOG_PART_MB: 64,
  MODELQ_PAYLOAD_LOG_BUFFER_MB: 64,
  MODELQ_PAYLOAD_LOG_MAX_RECORD_KB: 1024,
  MODELQ_PAYLOAD_LOG_CODEC: 'SNAPPY',
  ...over,
});

const model = (name: string) => ({ name, version: 1, inputs: [], outputs: [] }) as unknown as VersionRecord;
const request = (name: string, i: number, width: number, alias: string | null = 'latest'): LoggedRequest => ({
  model: model(name),
  owner: 'acme',
  alias,
  tenant: 'acme',
  keyId: 'k',
  clientId: `c${i}`,
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, width], data: Array.from({ length: width }, (_, j) => i + j / 7) }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [i] }],
  latencyMs: 1,
  error: null,
});

async function records(store: FsStore, name: string): Promise<PayloadRecord[]> {
  const out: PayloadRecord[] = [];
  for await (const r of readLogRecords(store, { tenant: 'acme', model: name }, {}, 100_000)) out.push(r);
  return out;
}

describe('payload log buffer', () => {
  const store = new FsStore(dir);

  it('drops and counts records past the buffer bound, writes the rest on flush', async () => {
    const log = new PayloadLogger(settings({ model: { sample: 1, redact: [] } }), store, cfg({ MODELQ_PAYLOAD_LOG_BUFFER_MB: 1 }), createLogger('t', 'silent'));
    for (let i = 0; i < 100; i++) log.offer(request('full', i, 2000));
    await log.close();
    expect(log.counts.sampled).toBe(100);
    expect(log.counts.dropped).toBeGreaterThan(0);
    expect(log.counts.written).toBeGreaterThan(0);
    expect(log.counts.written + log.counts.dropped).toBe(100);
    const got = await records(store, 'full');
    expect(got).toHaveLength(log.counts.written);
    expect(got.every((r) => !r.truncated && r.inputs!.length > 10_000)).toBe(true);
    // Closed: nothing more is taken.
    log.offer(request('full', 100, 1));
    expect(log.counts.sampled).toBe(100);
  });

  it('logs an oversized payload without it, and writes a part once it is big enough', async () => {
    const log = new PayloadLogger(
      settings({ model: { sample: 1, redact: [] } }),
      store,
      cfg({ MODELQ_PAYLOAD_LOG_MAX_RECORD_KB: 8, MODELQ_PAYLOAD_LOG_PART_MB: 1 }),
      createLogger('t', 'silent'),
    );
    log.offer(request('big', 0, 5000));
    for (let i = 1; i <= 400; i++) log.offer(request('big', i, 300));
    // 400 records of about 2 x 5 KiB: past 1 MiB a part is written before any flush.
    await vi.waitFor(() => expect(log.counts.parts).toBeGreaterThan(0), { timeout: 30_000, interval: 50 });
    await log.close();
    const got = await records(store, 'big');
    expect(got).toHaveLength(401);
    const big = got.find((r) => r.client_id === 'c0')!;
    expect(big).toMatchObject({ truncated: true, inputs: null, outputs: null, version: 1 });
    expect(got.filter((r) => r.truncated)).toHaveLength(1);
  });

  it("follows the alias's setting over the model's, and samples about the share asked", async () => {
    const log = new PayloadLogger(
      settings({ model: { sample: 0.25, redact: [] }, 'alias:quiet': { sample: 0, redact: [] } }),
      store,
      cfg(),
      createLogger('t', 'silent'),
    );
    for (let i = 0; i < 2000; i++) log.offer(request('share', i, 1, i % 2 ? 'quiet' : null));
    await log.close();
    const got = await records(store, 'share');
    expect(got.every((r) => r.alias === null)).toBe(true);
    // 1,000 offered at 0.25: sd 13.7.
    expect(got.length).toBeGreaterThan(180);
    expect(got.length).toBeLessThan(320);
  });
});

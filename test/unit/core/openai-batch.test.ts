// An OpenAI batch's request counts while its native batches run (rows spread over the lines they
// carry, refused lines failed from the start) and once it has ended (the counts it kept).
import { describe, expect, it } from 'vitest';
import { type BatchRecord, batchObject, requestCounts } from '../../../core/openai-batch.ts';

const record = (natives: { rows: number }[], total: number, refused: number): BatchRecord => ({
  id: 'batch_x',
  tenant: 't',
  endpoint: '/v1/embeddings',
  input_file_id: 'file-x',
  completion_window: '24h',
  metadata: null,
  created_at: 1,
  expires_at: 2,
  total,
  refused,
  natives: natives.map((n, i) => ({ id: `n${i}`, model: `m@${i}`, rows: n.rows })),
});

describe('request counts', () => {
  it('one row per line: the native counts; refused lines failed from the start', () => {
    const b = record([{ rows: 60 }, { rows: 39 }], 100, 1);
    expect(
      requestCounts(b, {}, [
        { completed: 50, failed: 2 },
        { completed: 10, failed: 0 },
      ]),
    ).toEqual({ completed: 60, failed: 3, expired: 0 });
  });

  it('lines of several rows: the share of their rows done, never past the lines', () => {
    const b = record([{ rows: 400 }], 100, 0);
    expect(requestCounts(b, {}, [{ completed: 200, failed: 0 }])).toEqual({ completed: 50, failed: 0, expired: 0 });
    expect(requestCounts(b, {}, [{ completed: 400, failed: 0 }]).completed).toBe(100);
  });

  it('validating: nothing yet; ended: the counts kept, expired lines failed in the object', () => {
    expect(requestCounts(record([], 0, 0), {}, [])).toEqual({ completed: 0, failed: 0, expired: 0 });
    const b = record([{ rows: 4 }], 4, 0);
    const kept = { counts: JSON.stringify({ completed: 1, failed: 1, expired: 2 }), status: 'expired' };
    expect(requestCounts(b, kept, [{ completed: 4, failed: 0 }])).toEqual({ completed: 1, failed: 1, expired: 2 });
    expect(batchObject(b, kept, requestCounts(b, kept, [])).request_counts).toEqual({ total: 4, completed: 1, failed: 3 });
  });
});

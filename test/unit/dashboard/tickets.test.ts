// Download tickets: one path, a short life, and nothing for a guessed or reused-elsewhere ticket.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Tickets } from '../../../dashboard/tickets.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('download tickets', () => {
  it('open exactly the path they were issued for, until they expire', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const t = new Tickets(60_000);
    const id = t.issue('secret-key-0123456789', '/api/v1/batches/batch_1/output');
    expect(t.redeem(id, '/api/v1/batches/batch_1/output')).toBe('secret-key-0123456789');
    expect(t.redeem(id, '/api/v1/batches/batch_1/errors')).toBeNull();
    expect(t.redeem('guessed', '/api/v1/batches/batch_1/output')).toBeNull();
    vi.setSystemTime(1_000_000 + 60_000);
    expect(t.redeem(id, '/api/v1/batches/batch_1/output')).toBeNull();
  });

  it('are unguessable and distinct', () => {
    const t = new Tickets();
    const ids = new Set(Array.from({ length: 100 }, () => t.issue('k', '/api/v1/x')));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });
});

// The audit log as an append-only Redis stream beside the audit lines (MODELQ_AUDIT_LOG): one entry
// per state-changing request and per refusal, queryable by time, actor (tenant) and action. Entries
// are only ever added (XADD); the stream is capped at MODELQ_AUDIT_STREAM_MAX entries, oldest first out.
import type { Redis } from 'ioredis';

export interface AuditEntry {
  /** The stream id: `<epoch ms>-<seq>`, increasing. */
  id: string;
  at: string;
  /** The tenant that acted; null for a request refused before it was known (no or unknown key). */
  actor: string | null;
  keyId: string | null;
  /** `METHOD /route/:param` as the router matched it (or the path when no route did). */
  action: string;
  /** The path of the call (names the resource acted on). */
  target: string;
  status: number | string;
}

export interface AuditQuery {
  /** Epoch ms, inclusive. */
  from?: number;
  /** Epoch ms, inclusive. */
  to?: number;
  actor?: string;
  /** A prefix of the action (`DELETE`, `POST /v1/models`). */
  action?: string;
  /** Entries after this stream id (paging). */
  after?: string;
  limit: number;
}

/** Entries read per query at most, however few match: a query's work is bounded. */
export const AUDIT_SCAN_LIMIT = 10_000;
const PAGE = 500;

export class AuditStream {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** Entries kept (approximately); 0: none are written. */
    private readonly max: number,
  ) {}

  get key() {
    return `${this.prefix}:records:audit`;
  }

  get enabled() {
    return this.max > 0;
  }

  async append(e: Omit<AuditEntry, 'id' | 'at'>): Promise<void> {
    if (!this.enabled) return;
    await this.redis.xadd(
      this.key,
      'MAXLEN',
      '~',
      this.max,
      '*',
      'actor',
      e.actor ?? '',
      'keyId',
      e.keyId ?? '',
      'action',
      e.action,
      'target',
      e.target,
      'status',
      String(e.status),
    );
  }

  /** Matching entries, oldest first, and the id to pass as `after` for the next page (null when the scan reached `to`). */
  async query(q: AuditQuery): Promise<{ entries: AuditEntry[]; next: string | null }> {
    let start = q.after ? `(${q.after}` : q.from !== undefined ? String(q.from) : '-';
    const end = q.to !== undefined ? String(q.to) : '+';
    const entries: AuditEntry[] = [];
    let scanned = 0;
    let last: string | null = null;
    while (entries.length < q.limit && scanned < AUDIT_SCAN_LIMIT) {
      const page = (await this.redis.xrange(this.key, start, end, 'COUNT', PAGE)) as [string, string[]][];
      if (!page.length) return { entries, next: null };
      for (const [id, flat] of page) {
        scanned++;
        last = id;
        const f: Record<string, string> = {};
        for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
        const e: AuditEntry = {
          id,
          at: new Date(Number(id.split('-')[0])).toISOString(),
          actor: f.actor || null,
          keyId: f.keyId || null,
          action: f.action ?? '',
          target: f.target ?? '',
          status: /^\d+$/.test(f.status ?? '') ? Number(f.status) : (f.status ?? ''),
        };
        if (q.actor !== undefined && e.actor !== q.actor) continue;
        if (q.action !== undefined && !e.action.toLowerCase().startsWith(q.action.toLowerCase())) continue;
        entries.push(e);
        if (entries.length >= q.limit) break;
      }
      if (page.length < PAGE && entries.length < q.limit) return { entries, next: null };
      start = `(${last}`;
    }
    return { entries, next: last };
  }
}

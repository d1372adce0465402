// Download tickets: a plain link (a batch's output, a model's ONNX file) cannot carry the key the
// UI keeps in sessionStorage, so the page trades it for a ticket bound to one path that lives a
// minute, and the proxy puts the key back on the request. Held in this process's memory only.
import { randomBytes } from 'node:crypto';

interface Ticket {
  key: string;
  path: string;
  expires: number;
}

export class Tickets {
  private readonly tickets = new Map<string, Ticket>();

  /** ttlMs: how long a ticket opens its path. Default 60 s: enough to start a download, short in a browser's history. */
  constructor(private readonly ttlMs = 60_000) {}

  issue(key: string, path: string): string {
    const now = Date.now();
    for (const [id, t] of this.tickets) if (t.expires <= now) this.tickets.delete(id);
    const id = randomBytes(24).toString('base64url');
    this.tickets.set(id, { key, path, expires: now + this.ttlMs });
    return id;
  }

  /** The key a live ticket stands for on exactly this path, else null. */
  redeem(id: string, path: string): string | null {
    const t = this.tickets.get(id);
    if (!t || t.expires <= Date.now() || t.path !== path) return null;
    return t.key;
  }
}

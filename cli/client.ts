// HTTP client of the `modelq` command: node:http(s) requests that stream their bodies both ways, the
// API key header, and the two ways a call fails (the server's `{ error: { code, message } }`, or
// nothing answering at the URL), both turned into CliError with the message to print.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

/** A failure the command reports as `modelq: <message>` with exit code 2. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface ClientOptions {
  /** Base URL of the producer, e.g. http://127.0.0.1:8080 (a trailing slash is fine). */
  url: string;
  /** Sent as `Authorization: Bearer <key>` when given. */
  apiKey?: string;
}

export interface RequestOptions {
  body?: Readable;
  headers?: Record<string, string | number>;
}

export class Client {
  readonly base: URL;
  constructor(private readonly opts: ClientOptions) {
    let base: URL;
    try {
      base = new URL(opts.url);
    } catch {
      throw new CliError(`--url ${JSON.stringify(opts.url)} is not a URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CliError(`--url must be http:// or https://, not ${base.protocol}`);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.base = base;
  }

  /** `path` is relative to the base URL ("v1/batches"), so a base with a path prefix keeps it. */
  urlOf(path: string): URL {
    return new URL(path.replace(/^\/+/, ''), this.base);
  }

  /**
   * Sends a request and resolves with the response once its headers arrive, for a 2xx status; the
   * caller consumes the body. A 4xx/5xx becomes a CliError carrying the server's message. A body is
   * streamed; if the server answers before it has read all of it (a 404 for an unknown model comes
   * before the upload), the upload stops there.
   */
  request(method: string, path: string, o: RequestOptions = {}): Promise<IncomingMessage> {
    const url = this.urlOf(path);
    const headers: Record<string, string | number> = { accept: 'application/json', ...o.headers };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = lib.request(url, { method, headers });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (answered) return; // the server answered early and then closed the upload: the answer counts
        o.body?.destroy();
        const hint = e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' ? '; is the platform running there? (--url or MODELQ_URL)' : '';
        reject(new CliError(`could not reach ${this.base.origin} (${method} ${url.pathname}): ${e.code ?? e.message}${hint}`));
      });
      req.on('response', (res) => {
        answered = true;
        const early = o.body !== undefined && !o.body.readableEnded;
        if (early) {
          o.body!.unpipe(req);
          o.body!.destroy();
        }
        if (res.statusCode !== undefined && res.statusCode < 400) return resolve(res);
        readText(res).then(
          (text) => {
            if (early) req.destroy();
            const retryAfter = Number(res.headers['retry-after']);
            reject(errorFrom(res.statusCode ?? 0, text, Number.isFinite(retryAfter) ? retryAfter : undefined));
          },
          (e: Error) => reject(new CliError(`${method} ${url.pathname} failed: HTTP ${res.statusCode}, ${e.message}`)),
        );
      });
      if (o.body) {
        o.body.on('error', (e) => {
          req.destroy();
          reject(new CliError(`could not read the input: ${e.message}`));
        });
        o.body.pipe(req);
      } else {
        req.end();
      }
    });
  }

  async json<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, o);
    const text = await readText(res);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new CliError(`${method} ${this.urlOf(path).pathname} answered HTTP ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }
}

export async function readText(res: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const b of res) parts.push(b as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

/** The server's `{ error: { code, message } }` (or the v2 `{ error: "..." }`); else the status and the start of the body. */
function errorFrom(status: number, text: string, retryAfterS?: number): CliError {
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } | string };
    if (typeof body.error === 'string') return new CliError(body.error, status, undefined, retryAfterS);
    if (body.error?.message) return new CliError(body.error.message, status, body.error.code, retryAfterS);
  } catch {
    /* not JSON: a proxy's page, say */
  }
  const snippet = text.trim().replace(/\s+/g, ' ').slice(0, 200);
  return new CliError(`HTTP ${status}${snippet ? `: ${snippet}` : ''}`, status, undefined, retryAfterS);
}

/** A JSON request body, sent with its length. */
export function sendJson<T>(c: Client, method: string, path: string, body: unknown): Promise<T> {
  const text = Buffer.from(JSON.stringify(body));
  return c.json<T>(method, path, { body: Readable.from([text]), headers: { 'content-type': 'application/json', 'content-length': text.length } });
}

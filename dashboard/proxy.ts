// /api/* -> the producer's API, on the dashboard's own origin so the browser needs no CORS and the
// UI sees exactly what the key it holds may see (the producer authenticates and scopes every call).
// Streams both ways: downloads of batch outputs and models are never buffered here.
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import type { RequestHandler } from 'express';
import type { Tickets } from './tickets.ts';

const FORWARDED_REQUEST = ['content-type', 'content-length', 'accept'];
/**
 * What the UI sends with every call that changes something. A form or link on another site cannot
 * set a header, so it cannot act through this proxy with whatever the browser would attach by itself.
 */
export const UI_HEADER = 'x-modelq-ui';
const FORWARDED_RESPONSE = ['content-type', 'content-length', 'content-disposition', 'etag', 'retry-after', 'cache-control'];

export function producerProxy(producerUrl: string, tickets: Tickets): RequestHandler {
  const base = new URL(producerUrl);
  const client = base.protocol === 'https:' ? https : http;
  return (req, res) => {
    const target = new URL(base.toString());
    const incoming = new URL(req.url, 'http://x');
    target.pathname = `${base.pathname.replace(/\/$/, '')}${incoming.pathname}`;
    const headers: http.OutgoingHttpHeaders = {};
    for (const h of FORWARDED_REQUEST) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
    // Only a bearer key is passed on: basic credentials the browser cached for the board's login
    // prompt are sent by the browser on its own, so they never act on the API from here.
    const auth = req.headers.authorization;
    if (auth && /^bearer /i.test(auth)) headers.authorization = auth;
    if (!['GET', 'HEAD'].includes(req.method) && req.headers[UI_HEADER] !== '1') {
      return void res.status(403).json({
        error: {
          code: 'forbidden',
          message: `calls that change something go through the dashboard's proxy only with the header ${UI_HEADER}: 1 (the dashboard's pages send it); call the producer's API directly otherwise`,
        },
      });
    }
    const ticket = incoming.searchParams.get('ticket');
    if (ticket !== null) {
      incoming.searchParams.delete('ticket');
      const key = req.method === 'GET' ? tickets.redeem(ticket, `/api${incoming.pathname}`) : null;
      if (!key)
        return void res
          .status(401)
          .json({ error: { code: 'unauthorized', message: 'the download ticket is unknown, expired or for another path: open the link from the page again' } });
      headers.authorization = `Bearer ${key}`;
    }
    target.search = incoming.search;
    const upstream = client.request(target, { method: req.method, headers }, (up) => {
      res.status(up.statusCode ?? 502);
      for (const h of FORWARDED_RESPONSE) if (up.headers[h] !== undefined) res.setHeader(h, up.headers[h]!);
      // pipeline: a browser that leaves mid-download ends the upstream request with it.
      pipeline(up, res).catch(() => res.destroy());
    });
    upstream.on('error', (e) => {
      if (res.headersSent) return void res.destroy();
      res.status(502).json({
        error: {
          code: 'bad_gateway',
          message: `the producer at ${base.origin} does not answer (${(e as NodeJS.ErrnoException).code ?? e.message}); set MODELQ_PRODUCER_URL`,
        },
      });
    });
    res.on('close', () => upstream.destroy());
    // An upload the browser abandons fails the upstream request (answered by its error handler above).
    pipeline(req, upstream).catch(() => {});
  };
}

// Server-sent events of a batch's status: an event whenever the view changes, until a final state
// or until the client goes away.
import type { Request, Response } from 'express';
import { BatchStore, type BatchView } from '../../core/batches.ts';
import type { BatchSpec } from '../../core/jobs/batch.ts';
import { publicView } from './accept.ts';

const POLL_MS = 500;

export async function streamEvents(req: Request, res: Response, batches: BatchStore, first: BatchView & { spec: BatchSpec }): Promise<void> {
  let v = first;
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive' });
  let last = '';
  let closed = false;
  req.on('close', () => {
    closed = true;
  });
  res.on('error', () => {
    closed = true;
  });
  while (!closed) {
    const data = JSON.stringify(publicView(v));
    if (data !== last) res.write(`event: status\ndata: ${data}\n\n`);
    last = data;
    if (BatchStore.isFinal(v.status)) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
    v = (await batches.view(v.id)) ?? v;
  }
  res.end();
}
